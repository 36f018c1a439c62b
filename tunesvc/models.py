"""Model sources: an ONNX file or a built-in zoo name, with input shapes fixed.

Every model becomes an ONNX graph with fully static input shapes, so the same graph feeds
TVM (to tune and compile) and onnxruntime (the reference `tunesvc run` checks against).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from tunesvc.errors import UserError
from tunesvc.zoo import INPUT_NAME, ZOO

ZOO_PREFIX = "zoo:"
Shape = tuple[int, ...]
_SHAPE_RE = re.compile(r"^(?P<name>[^:]+):(?P<dims>\d+(?:x\d+)*)$")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to import: its ONNX graph and the static shape of every input."""

    source: str
    proto: onnx.ModelProto
    input_shapes: dict[str, Shape]

    @property
    def fingerprint(self) -> str:
        """Identifies graph, weights and shapes: part of every compiled-library cache key."""
        digest = hashlib.sha256(self.proto.SerializeToString(deterministic=True))
        digest.update(repr(sorted(self.input_shapes.items())).encode())
        return digest.hexdigest()[:24]


def parse_input_shape(text: str) -> tuple[str, Shape]:
    """'input:1x3x224x224' -> ('input', (1, 3, 224, 224))."""
    match = _SHAPE_RE.match(text.strip())
    if not match:
        raise UserError(f"input shape {text!r} is not NAME:DxDx..., e.g. input:1x3x224x224")
    dims = tuple(int(d) for d in match["dims"].split("x"))
    if 0 in dims:
        raise UserError(f"input shape {text!r} has a zero dimension")
    return match["name"], dims


def load_model(source: str, input_shapes: dict[str, Shape] | None = None) -> LoadedModel:
    """Load `zoo:NAME` or an ONNX file path, fixing its input shapes."""
    shapes = dict(input_shapes or {})
    if source.startswith(ZOO_PREFIX):
        return _load_zoo(source, shapes)
    return _load_onnx_file(source, shapes)


def _load_zoo(source: str, shapes: dict[str, Shape]) -> LoadedModel:
    name = source[len(ZOO_PREFIX):]
    if name not in ZOO:
        raise UserError(f"unknown zoo model {source!r}; known: {', '.join(zoo_names())}")
    unknown = set(shapes) - {INPUT_NAME}
    if unknown:
        raise UserError(f"{source} has one input, {INPUT_NAME!r}; got shapes for {sorted(unknown)}")
    entry = ZOO[name]
    shape = shapes.get(INPUT_NAME, entry.default_shape)
    if len(shape) != len(entry.default_shape):
        raise UserError(f"{source} takes a {len(entry.default_shape)}-d input, got {shape}")
    return LoadedModel(source, entry.build(shape), {INPUT_NAME: shape})


def zoo_names() -> list[str]:
    return [ZOO_PREFIX + name for name in ZOO]


def _load_onnx_file(source: str, shapes: dict[str, Shape]) -> LoadedModel:
    path = Path(source)
    if not path.is_file():
        raise UserError(f"model file {source} does not exist (zoo models: {', '.join(zoo_names())})")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise UserError(f"{source} is not a valid ONNX model: {_first_line(exc)}") from None
    return LoadedModel(source, proto, _static_input_shapes(proto, shapes, source))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    # Older exporters list weights among the inputs too; those are not user inputs.
    weights = {init.name for init in proto.graph.initializer}
    return [value for value in proto.graph.input if value.name not in weights]


def _static_input_shapes(proto: onnx.ModelProto, given: dict[str, Shape],
                         source: str) -> dict[str, Shape]:
    inputs = _graph_inputs(proto)
    unknown = set(given) - {value.name for value in inputs}
    if unknown:
        names = ", ".join(value.name for value in inputs)
        raise UserError(f"{source} has no input named {sorted(unknown)}; its inputs: {names}")
    return {value.name: _input_shape(value, given.get(value.name), source) for value in inputs}


def _input_shape(value: onnx.ValueInfoProto, given: Shape | None, source: str) -> Shape:
    dims = value.type.tensor_type.shape.dim
    declared = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]
    if given is None:
        if None in declared or not declared:
            raise UserError(
                f"input {value.name!r} of {source} has dynamic dimensions {_show(declared)}; "
                f"fix them with --input-shape {value.name}:" + "x".join("1" for _ in declared)
            )
        return tuple(int(d) for d in declared)
    if declared and len(given) != len(declared):
        raise UserError(f"input {value.name!r} is {len(declared)}-d, got shape {given}")
    for want, have in zip(declared, given):
        if want is not None and want != have:
            raise UserError(f"input {value.name!r} has fixed shape {_show(declared)}; got {given}")
    return given


def _show(dims: list[int | None]) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)
