"""The engine a user already has: onnxruntime on the same ONNX graph and inputs (for a
PyTorch model: PyTorch itself, `tunesvc.models.pytorch`).

A run is checked against it (outputs) and compared with it (latency at the same share:
the same cores, as many intra-op threads as the share has cores).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime

from tunesvc.models.base import LoadedModel
from tunesvc.models.onnx.imported import OnnxGraph

# float32 kernels with different loop orders differ by rounding; scale by output magnitude.
RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Agreement:
    max_abs_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


class Reference(Protocol):
    """An engine a user already has, on the model as they gave it."""

    name: str

    def outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """What it computes for `inputs` (one array per model input, in order)."""
        ...

    def timed_call(self, inputs: list[np.ndarray], threads: int) -> Callable[[], object]:
        """One inference with `threads` intra-op threads, inputs prepared: what is timed."""
        ...


@dataclass(frozen=True)
class Onnxruntime:
    """onnxruntime's CPU provider on the ONNX graph as given."""

    model: LoadedModel
    name: str = "onnxruntime"

    def outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        session = onnxruntime.InferenceSession(self.model.proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return list(session.run(None, feed(self.model, inputs)))

    def timed_call(self, inputs: list[np.ndarray], threads: int) -> Callable[[], object]:
        session = cpu_session(self.model, threads)
        fed = feed(self.model, inputs)
        return lambda: session.run(None, fed)


def reference_of(model: LoadedModel) -> Reference:
    """onnxruntime for an ONNX model; a PyTorch model's graph is its own reference
    (PyTorch eager, `tunesvc.models.pytorch.TorchGraph`)."""
    if isinstance(model.for_tvm, OnnxGraph):
        return Onnxruntime(model)
    return typing.cast(Reference, model.for_tvm)


def engine_name(model: LoadedModel) -> str:
    """What `model`'s outputs are checked against."""
    return reference_of(model).name


def reference_outputs(model: LoadedModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return reference_of(model).outputs(inputs)


def feed(model: LoadedModel, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime runs the graph as given: fixed inputs are fed their values."""
    return {**dict(zip(model.input_shapes, inputs)), **model.input_values}


def cpu_session(model: LoadedModel, threads: int) -> onnxruntime.InferenceSession:
    """onnxruntime's CPU provider with all graph optimizations and `threads` intra-op
    threads; the process's CPU affinity decides which cores they run on."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(model.proto.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def reference_call(model: LoadedModel, inputs: list[np.ndarray],
                   threads: int) -> Callable[[], object]:
    """One inference of the reference engine with `threads` intra-op threads: onnxruntime
    for an ONNX model, PyTorch eager for a PyTorch one."""
    return reference_of(model).timed_call(inputs, threads)


def compare(outputs: list[np.ndarray], expected: list[np.ndarray]) -> Agreement:
    worst, tolerance = 0.0, 0.0
    for got, want in zip(outputs, expected, strict=True):
        worst = max(worst, float(np.max(np.abs(got - want))))
        tolerance = max(tolerance, RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(want)))))
    return Agreement(worst, tolerance)
