"""An ONNX graph as TVM imports it: prepared (`tunesvc.models.onnx.prep`), its input
shapes and types fixed, and a fingerprint of the graph as the user gave it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    from tvm.ir import IRModule


@dataclass(frozen=True)
class OnnxGraph:
    prepared: onnx.ModelProto = field(repr=False)
    input_shapes: dict[str, tuple[int, ...]]
    input_dtypes: dict[str, str]
    fingerprint: str

    def to_relax(self) -> IRModule:
        from tvm.relax.frontend.onnx import from_onnx

        return from_onnx(self.prepared, shape_dict=dict(self.input_shapes),
                         dtype_dict=dict(self.input_dtypes), keep_params_in_input=False)


def onnx_fingerprint(proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]],
                     values: dict[str, np.ndarray]) -> str:
    """Identifies graph, weights, shapes and fixed input values: part of every compiled
    library's cache key."""
    digest = hashlib.sha256(proto.SerializeToString(deterministic=True))
    digest.update(repr(sorted(shapes.items())).encode())
    for name, value in sorted(values.items()):
        digest.update(f"{name}={value.tolist()!r}".encode())
    return digest.hexdigest()[:24]
