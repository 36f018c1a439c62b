"""What crosses the pipe between the server and a model's process: small frozen values,
failures as data (an `error` field), never an exception raised in the other process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the protocol names it: KServe datatype (FP32, INT64, ...) and shape."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMeta:
    """A loaded model, as its process reports it once it is ready."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    engine: str
    kernels: str  # where the kernels came from: "20 tuned at 50% (exact share), ..."
    cores: tuple[int, ...]
    pid: int


@dataclass(frozen=True)
class Loaded:
    meta: ModelMeta


@dataclass(frozen=True)
class LoadFailed:
    error: str  # one line; the traceback is in the model's log


@dataclass(frozen=True)
class Infer:
    request_id: int
    arrays: tuple[np.ndarray, ...]  # one per model input, in input order


@dataclass(frozen=True)
class Result:
    request_id: int
    outputs: tuple[np.ndarray, ...] | None
    error: str | None
    compute_sec: float
