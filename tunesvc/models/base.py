"""What every model source gives: a `LoadedModel`, the graph TVM imports and the inputs
it is run on (`tunesvc.models.sources` loads one from a file, a zoo name or a PyTorch module)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx


class CapturedGraph(Protocol):
    """A graph captured from a framework (a PyTorch module, `tunesvc.models.pytorch`)."""

    @property
    def fingerprint(self) -> str: ...


ZOO_PREFIX = "zoo:"
TORCH_PREFIX = "torch:"
Shape = tuple[int, ...]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to import: its ONNX graph as given (None for a PyTorch model), the
    static shape and the element type (a NumPy dtype name) of every input, and the graph
    as TVM imports it (a prepared ONNX graph, or a captured PyTorch module)."""

    source: str
    proto: onnx.ModelProto | None
    input_shapes: dict[str, Shape]
    input_dtypes: dict[str, str]
    for_tvm: onnx.ModelProto | CapturedGraph = field(compare=False, repr=False)
    # inputs fixed to a value (--input-value): constants in `for_tvm`, fed to onnxruntime
    input_values: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """How the database names it: the zoo or torch: name, or the file's absolute path."""
        if self.proto is None or self.source.startswith(ZOO_PREFIX):
            return self.source
        return str(Path(self.source).resolve())

    @property
    def fingerprint(self) -> str:
        """Identifies graph, weights and shapes: part of every compiled-library cache key."""
        if self.proto is None:
            return self.for_tvm.fingerprint
        digest = hashlib.sha256(self.proto.SerializeToString(deterministic=True))
        digest.update(repr(sorted(self.input_shapes.items())).encode())
        for name, value in sorted(self.input_values.items()):
            digest.update(f"{name}={value.tolist()!r}".encode())
        return digest.hexdigest()[:24]
