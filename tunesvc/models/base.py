"""What every model source gives: a `LoadedModel`, the graph TVM imports and the inputs
it is run on (`tunesvc.models.sources` loads one from a file, a zoo name or a PyTorch module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnx

if TYPE_CHECKING:
    from tvm.ir import IRModule


class ModelGraph(Protocol):
    """The graph TVM imports, whatever it came from: an ONNX graph prepared for TVM's
    frontend (`tunesvc.models.onnx.imported`) or a captured PyTorch module
    (`tunesvc.models.pytorch`)."""

    @property
    def fingerprint(self) -> str:
        """Identifies graph, weights and shapes: part of every compiled library's key."""
        ...

    def to_relax(self) -> IRModule:
        """The Relax module, weights bound as constants."""
        ...


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
    for_tvm: ModelGraph = field(compare=False, repr=False)
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
        return self.for_tvm.fingerprint
