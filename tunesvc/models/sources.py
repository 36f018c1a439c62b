"""Model sources: an ONNX file, a built-in zoo name or a PyTorch module
(`tunesvc.models.pytorch`), with input shapes fixed.

ONNX and zoo models become an ONNX graph with fully static input shapes. onnxruntime (the
reference `tunesvc run` checks against) runs the graph as given; TVM imports it prepared
(`tunesvc.models.onnx.prep`: shapes fixed, shape computations folded, recurrent layers unrolled).
A dimension is dynamic when the file gives no positive size for it (`-1`, `?`, a name);
`--input-shape` fixes it. A scalar input has no dimensions to fix.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnx

from tunesvc.models.base import TORCH_PREFIX, ZOO_PREFIX, LoadedModel, Shape
from tunesvc.errors import UserError, first_line, model_step
from tunesvc.models.input_values import fixed_values
from tunesvc.models.onnx.imported import OnnxGraph, onnx_fingerprint
from tunesvc.models.onnx.prep import prepare_for_tvm
from tunesvc.models.zoo import INPUT_NAME, ZOO

_SHAPE_RE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:x\d+)*)$")


def parse_input_shape(text: str) -> tuple[str, Shape]:
    """'input:1x3x224x224' -> ('input', (1, 3, 224, 224))."""
    match = _SHAPE_RE.match(text.strip())
    if not match:
        raise UserError(f"input shape {text!r} is not NAME:DxDx..., e.g. input:1x3x224x224")
    dims = tuple(int(d) for d in match["dims"].split("x"))
    if 0 in dims:
        raise UserError(f"input shape {text!r} has a zero dimension")
    return match["name"], dims


def parse_input_value(text: str) -> tuple[str, str]:
    """'sr=16000' -> ('sr', '16000')."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip() or not value.strip():
        raise UserError(f"input value {text!r} is not NAME=VALUE, e.g. sr=16000")
    return name.strip(), value.strip()


def load_model(source: str, input_shapes: dict[str, Shape] | None = None,
               input_values: dict[str, str] | None = None) -> LoadedModel:
    """Load `zoo:NAME`, `torch:package.module:factory` or an ONNX file path, fixing its
    input shapes, and the ONNX file's scalar inputs named in `input_values` to a value."""
    shapes = dict(input_shapes or {})
    if input_values and source.startswith((ZOO_PREFIX, TORCH_PREFIX)):
        raise UserError(f"--input-value fixes inputs of ONNX files only, not of {source}")
    if source.startswith(ZOO_PREFIX):
        return _load_zoo(source, shapes)
    if source.startswith(TORCH_PREFIX):
        from tunesvc.models.pytorch import load_torch_source  # torch only when asked for

        return load_torch_source(source, shapes)
    return _load_onnx_file(source, shapes, input_values)


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
    return _loaded(source, entry.build(shape), {INPUT_NAME: shape})


def zoo_names() -> list[str]:
    return [ZOO_PREFIX + name for name in ZOO]


def _load_onnx_file(source: str, shapes: dict[str, Shape],
                    given_values: dict[str, str] | None = None) -> LoadedModel:
    path = Path(source)
    if not path.is_file():
        raise UserError(f"model file {source} does not exist (zoo models: {', '.join(zoo_names())})")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise UserError(f"{source} is not a valid ONNX model: {first_line(exc)}") from None
    values = fixed_values(_graph_inputs(proto), given_values or {}, source)
    return _loaded(source, proto, _static_input_shapes(proto, shapes, source, values), values)


def _loaded(source: str, proto: onnx.ModelProto, shapes: dict[str, Shape],
            values: dict[str, np.ndarray] | None = None) -> LoadedModel:
    values = values or {}
    dtypes = {value.name: _dtype(value) for value in _graph_inputs(proto)
              if value.name not in values}
    with model_step("preparing the graph for TVM", source):
        prepared = prepare_for_tvm(proto, shapes, source, values)
    graph = OnnxGraph(prepared, shapes, dtypes, onnx_fingerprint(proto, shapes, values))
    return LoadedModel(source, proto, shapes, dtypes, graph, values)



def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    # Older exporters list weights among the inputs too; those are not user inputs.
    weights = {init.name for init in proto.graph.initializer}
    return [value for value in proto.graph.input if value.name not in weights]


def _static_input_shapes(proto: onnx.ModelProto, given: dict[str, Shape], source: str,
                         values: dict[str, np.ndarray] | None = None) -> dict[str, Shape]:
    inputs = [value for value in _graph_inputs(proto) if value.name not in (values or {})]
    unknown = set(given) - {value.name for value in inputs}
    if unknown:
        names = ", ".join(value.name for value in inputs)
        raise UserError(f"{source} has no input named {sorted(unknown)}; its inputs: {names}")
    return {value.name: _input_shape(value, given.get(value.name), source) for value in inputs}


def _declared_dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    """Declared sizes, None for a dynamic one; None for an input of unknown rank."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None
            for dim in tensor.shape.dim]


def _input_shape(value: onnx.ValueInfoProto, given: Shape | None, source: str) -> Shape:
    declared = _declared_dims(value)
    if given is None and _only_batch_dynamic(declared):
        batch_one = (1, *(int(d) for d in declared[1:]))
        _note_once(f"note: input {value.name!r} of {source} has a dynamic batch dimension "
                   f"({_show(declared)}): running at batch 1 (--input-shape "
                   f"{value.name}:{_show(list(batch_one))} to choose)")
        return batch_one
    if given is None:
        if declared is None or None in declared:
            raise UserError(f"input {value.name!r} of {source} has dynamic dimensions "
                            f"{_show(declared)}; fix them with --input-shape "
                            f"{value.name}:{_suggest(declared)}")
        return tuple(int(d) for d in declared)
    if declared is not None and len(given) != len(declared):
        raise UserError(f"input {value.name!r} of {source} is {len(declared)}-d "
                        f"({_show(declared)}), got shape {_show(list(given))}")
    for want, have in zip(declared or [], given):
        if want is not None and want != have:
            raise UserError(f"input {value.name!r} of {source} has shape {_show(declared)}: "
                            f"only its dynamic (?) dimensions can change; got {_show(list(given))}")
    return given


def _only_batch_dynamic(dims: list[int | None] | None) -> bool:
    """A leading (batch) dimension is the only dynamic one, of a tensor of rank 2 or more."""
    return dims is not None and len(dims) > 1 and dims[0] is None and None not in dims[1:]


_NOTED: set[str] = set()


def _note_once(text: str) -> None:
    """A line on stderr, once per process (a model is loaded more than once by some commands)."""
    if text not in _NOTED:
        _NOTED.add(text)
        print(text, file=sys.stderr)


def _dtype(value: onnx.ValueInfoProto) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name


def _show(dims: list[int | None] | None) -> str:
    if dims is None:
        return "of unknown rank"
    return "x".join("?" if d is None else str(d) for d in dims) if dims else "(scalar)"


def _suggest(dims: list[int | None] | None) -> str:
    """A shape to start from: the declared sizes, 1 where dynamic (rank unknown: 1x3x224x224)."""
    if dims is None:
        return "1x3x224x224"
    return "x".join("1" if d is None else str(d) for d in dims)
