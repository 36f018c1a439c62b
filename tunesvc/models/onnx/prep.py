"""The ONNX graph TVM imports, prepared from the graph a user exported.

Exporters leave shape computations in graphs (Shape -> Gather -> Concat -> Reshape) that
TVM's ONNX import cannot follow, and recurrent layers it has no converter for. Before
import: the input shapes are fixed to the ones the model is loaded at (and inputs given a
value become constants), shapes are inferred and constant subgraphs folded (onnxsim),
`If`s on constant conditions are replaced by their branch (`tunesvc.models.onnx.if_nodes`), LSTM/GRU/RNN
layers are unrolled into operators TVM imports (`tunesvc.models.onnx.rnn`), and any operator left
without a converter is named in one line. onnxruntime still runs the graph as given, so
every run checks the preparation.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator

import numpy as np
import onnx

from tunesvc.errors import UserError, first_line
from tunesvc.models.onnx.graph import Emitter, inferred_shapes, rewrite_nodes
from tunesvc.models.onnx.quantized import quantized_operators
from tunesvc.models.onnx.stable import stable_operators
from tunesvc.models.onnx.if_nodes import (inline_constant_ifs, select_data_ifs,
                                          with_input_values)
from tunesvc.models.onnx.rnn import RECURRENT_OPS, unroll_recurrent

log = logging.getLogger(__name__)
Shape = tuple[int, ...]
DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_IF_ROUNDS = 8  # If nesting depth followed


def prepare_for_tvm(proto: onnx.ModelProto, shapes: dict[str, Shape], source: str,
                    values: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """`proto` with `shapes` fixed, the inputs in `values` made constants, constant shape
    computations folded, decided `If`s inlined and the others computed both ways and
    selected from (`if_nodes`), recurrent layers unrolled, integer operators
    rewritten into ones TVM converts (`quantized`) and operators TVM computes otherwise than
    onnxruntime rewritten (`stable`); UserError
    naming any operator TVM cannot import."""
    shaped = with_input_shapes(proto, shapes)
    folded = fold_constants(shaped, source, values, reference=proto)
    selected = select_data_ifs(folded)
    prepared = stable_operators(quantized_operators(clips_as_relus(selected)))
    if any(node.op_type in RECURRENT_OPS for node in prepared.graph.node):
        prepared = fold_constants(unroll_recurrent(prepared, source), source)
    check_supported(prepared, source)
    return prepared


def with_input_shapes(proto: onnx.ModelProto, shapes: dict[str, Shape]) -> onnx.ModelProto:
    """A copy of `proto` whose inputs declare `shapes` (every dimension a fixed size)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    for value in model.graph.input:
        if value.name not in shapes:
            continue
        shape = value.type.tensor_type.shape
        shape.ClearField("dim")
        for size in shapes[value.name]:
            shape.dim.add().dim_value = size
    return model


def fold_constants(model: onnx.ModelProto, source: str,
                   values: dict[str, np.ndarray] | None = None,
                   reference: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """Shapes inferred, the inputs in `values` made constants, constant subgraphs folded and
    decided `If`s inlined, by onnxsim (graph otherwise unchanged), else by onnxslim; a
    folded graph is used only if onnxruntime computes the same outputs from it as from
    `reference` (default `model`; fed `values`) on made-up inputs of `model`'s shapes.
    Else shape inference alone. (The reference is best the graph as exported: fixed
    shapes can contradict a branch never taken, which onnxruntime then refuses.)"""
    inferred = inferred_shapes(model, source)  # outputs get their shapes
    fixed = with_input_values(inferred, values or {})
    for name, fold in (("onnxsim", _onnxsim), ("onnxslim", _onnxslim)):
        try:
            with _quiet():
                folded = _folded_and_decided(fold, fixed)
            feed = {**_made_up_feed(model), **(values or {})}
            if _same_outputs(reference or model, folded, feed):
                return folded
            log.warning("%s: %s folded it into a graph that computes something else",
                        source, name)
        except Exception as exc:  # the folders raise many types for graphs they cannot fold
            log.warning("%s: %s could not fold it (%s)", source, name, first_line(exc))
    log.warning("%s: importing it with shape inference only", source)
    return fixed


def _folded_and_decided(fold: Callable[[onnx.ModelProto], onnx.ModelProto],
                        model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold; inline the `If`s folding decided and fold again, while there are any.
    (onnxruntime may crash on a graph whose `If` conditions are constants: none is left
    before it sees the graph.)"""
    folded = fold(model)
    for _ in range(MAX_IF_ROUNDS):
        folded, inlined = inline_constant_ifs(folded)
        if not inlined:
            break
        folded = fold(folded)
    return folded


def _onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    return onnxsim.simplify(model, perform_optimization=False, check_n=0)[0]


def _onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


def _made_up_feed(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Inputs for `model` (static shapes): standard-normal floats, zeros otherwise."""
    rng = np.random.default_rng(0)
    weights = {t.name for t in model.graph.initializer}
    feed = {}
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        shape = [d.dim_value for d in tensor.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        feed[value.name] = (rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                            else np.zeros(shape, dtype))
    return feed


def _same_outputs(reference: onnx.ModelProto, folded: onnx.ModelProto,
                  feed: dict[str, np.ndarray]) -> bool:
    """Whether onnxruntime gives the same outputs for both (each fed the inputs it has)."""
    import onnxruntime

    want, got = (onnxruntime.InferenceSession(m.SerializeToString(),
                                              providers=["CPUExecutionProvider"])
                 .run(None, {v.name: feed[v.name] for v in m.graph.input if v.name in feed})
                 for m in (reference, folded))
    return all(np.allclose(w, g, rtol=1e-4, atol=1e-5, equal_nan=True)
               for w, g in zip(want, got, strict=True))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxsim prints progress to stdout: keep it off the user's terminal (and --json)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def clips_as_relus(model: onnx.ModelProto) -> onnx.ModelProto:
    """Clip with constant bounds as Relu arithmetic: max(x, lo) = lo + relu(x - lo) (relu(x)
    for lo = 0) and min(y, hi) = hi - relu(hi - y). TVM imports Clip as an opaque kernel
    that layout rewriting cannot see through (and Max/Min as stack-and-reduce); Relu, Add
    and Sub it imports as elementwise operators, which fuse into the producer."""
    def as_relus(emitter: Emitter, node: onnx.NodeProto) -> bool:
        bounds = _clip_bounds(emitter, node)
        if bounds is None:
            return False
        value = _clip_with_relus(emitter, node.input[0], *bounds)
        emitter.nodes.append(onnx.helper.make_node("Identity", [value], [node.output[0]],
                                                   name=node.name))
        return True

    return rewrite_nodes(model, as_relus)


def _clip_with_relus(e: Emitter, x: str, low: np.ndarray | None,
                     high: np.ndarray | None) -> str:
    # An infinite bound clips nothing, and as arithmetic it would give inf - inf = nan.
    low = None if low is not None and np.all(np.isneginf(low)) else low
    high = None if high is not None and np.all(np.isposinf(high)) else high
    if low is not None and not np.any(low):
        x = e.op("Relu", [x])
    elif low is not None:
        bound = e.const(low)
        x = e.op("Add", [e.op("Relu", [e.op("Sub", [x, bound])]), bound])
    if high is not None:
        bound = e.const(high)
        x = e.op("Sub", [bound, e.op("Relu", [e.op("Sub", [bound, x])])])
    return x


def _clip_bounds(emitter: Emitter, node: onnx.NodeProto) -> tuple | None:
    """(low, high) of a Clip whose bounds are constants (None for an absent bound)."""
    if node.op_type != "Clip" or node.domain not in DEFAULT_DOMAINS:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if emitter.opset < 11:
        return (_scalar(attrs.get("min")), _scalar(attrs.get("max")))
    found = []
    for position in (1, 2):
        name = node.input[position] if len(node.input) > position else ""
        value = emitter.initializer_value(name) if name else None
        if name and value is None:
            return None  # a bound computed at run time
        found.append(value)
    return tuple(found)


def _scalar(value: float | None) -> np.ndarray | None:
    return None if value is None else np.array(value, np.float32)


def check_supported(model: onnx.ModelProto, source: str) -> None:
    """UserError naming the operators (and a node of each) TVM's ONNX import lacks."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = _get_convert_map()
    missing: dict[str, str] = {}
    for node in _all_nodes(model.graph):
        if node.domain not in DEFAULT_DOMAINS or node.op_type not in known:
            missing.setdefault(_op_name(node), node.name or "(unnamed)")
    if missing:
        named = ", ".join(f"{op} (node {node!r})" for op, node in missing.items())
        hint = ("; an If on an input decides once the input is fixed (--input-value "
                "NAME=VALUE)" if "If" in missing else "")
        raise UserError(f"TVM cannot import {source}: no converter for {named}{hint}")


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, including those of subgraphs (If/Loop bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.HasField("g") \
                    else list(attribute.graphs):
                yield from _all_nodes(sub)


def _op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"

