"""Where does TVM's answer leave onnxruntime's? Every intermediate value is made an output:
TVM runs the graph as tunesvc prepared it for import (with its default schedules: a wrong
answer is a lowering's, not a schedule's), onnxruntime the graph as the user gave it, and
the values both graphs hold are compared in the prepared graph's order: the first one
beyond tolerance names its node. onnxruntime then runs the prepared graph too, to tell
who changed that value: tunesvc's preparation (onnxruntime agrees with TVM on it) or TVM.

ONNX models only (a PyTorch model's intermediates have no names to compare by).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
from tvm import relax

from tunesvc.errors import UserError, model_step
from tunesvc.models.base import LoadedModel
from tunesvc.models.onnx.imported import OnnxGraph
from tunesvc.models.onnx.graph import inferred_shapes
from tunesvc.evaluation.reference import compare, feed as reference_feed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValueDiff:
    """The first value that differs: which node made it, how far apart, what each holds."""

    node: str
    op_type: str  # in the graph as given
    prepared_op_type: str  # what tunesvc's preparation made of it (the same if untouched)
    value: str
    max_abs_error: float
    tolerance: float
    tvm: str  # a summary: shape, min, max, mean, count of inf and nan
    reference: str
    cause: str  # "preparation" (tunesvc's graph rewrite) or "TVM"


def first_divergence(model: LoadedModel, inputs: list[np.ndarray]) -> ValueDiff | None:
    """The first node whose output TVM computes differently, or None if all agree."""
    if not isinstance(model.for_tvm, OnnxGraph):
        raise UserError("--bisect compares ONNX graphs node by node; a PyTorch model has none")
    graph, values = _with_every_value(model.for_tvm.prepared)
    feed = reference_feed(model, inputs)
    expected = _as_given_values(model, feed) or _onnxruntime_values(model, graph, values, feed)
    with model_step("running every intermediate value with TVM", model.source):
        got = _tvm_outputs(model, graph, inputs)
    for value in (v for v in values if v in expected):
        diff = _diff(value, got[value], expected[value])
        if diff is not None:
            prepared = _onnxruntime_values(model, graph, [value], feed)[value]
            cause = "TVM" if _diff(value, got[value], prepared) else "preparation"
            return ValueDiff(*_producer(model, graph, value), value, *diff, cause)
    return None


def _producer(model: LoadedModel, prepared: onnx.ModelProto, value: str) -> tuple[str, str, str]:
    """The name and op type of the node that makes `value` in the graph as given (the
    prepared graph's if the preparation made it), and the prepared node's op type."""
    def producers(graph: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
        return {out: node for node in graph.graph.node for out in node.output}

    made = producers(prepared)[value]
    given = producers(model.proto).get(value, made)
    return given.name or f"({given.op_type})", given.op_type, made.op_type


def _as_given_values(model: LoadedModel, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every intermediate value of the graph as the user gave it, by onnxruntime; empty if
    that graph cannot expose them (its shapes cannot be inferred, say)."""
    try:
        graph, values = _with_every_value(model.proto)
        return _onnxruntime_values(model, graph, values, feed)
    except Exception:  # noqa: BLE001 - the prepared graph is the fallback reference
        log.info("every value of %s as given: not available", model.source, exc_info=True)
        return {}


def _onnxruntime_values(model: LoadedModel, graph: onnx.ModelProto, values: list[str],
                        feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with model_step("running every intermediate value with onnxruntime", model.source):
        session = onnxruntime.InferenceSession(graph.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return dict(zip(values, session.run(values, feed)))


def _with_every_value(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with every numeric node output also a graph output, and those names in order."""
    inferred = inferred_shapes(model, "the graph")
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    wanted = [out for node in inferred.graph.node for out in node.output
              if out in known and _is_numeric(known[out])]
    graph = onnx.ModelProto()
    graph.CopyFrom(inferred)
    outputs = {o.name for o in graph.graph.output}
    graph.graph.output.extend(known[name] for name in wanted if name not in outputs)
    return graph, wanted


NUMERIC = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
           onnx.TensorProto.BOOL, onnx.TensorProto.INT8, onnx.TensorProto.UINT8,
           onnx.TensorProto.INT32, onnx.TensorProto.INT64}


def _is_numeric(value: onnx.ValueInfoProto) -> bool:
    return value.type.tensor_type.elem_type in NUMERIC


def _tvm_outputs(model: LoadedModel, graph: onnx.ModelProto,
                 inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output as TVM computes it on this host's CPU, by name."""
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    from tunesvc.targets import TargetSpec
    from workers.shares import Share

    mod = from_onnx(graph, shape_dict=dict(model.input_shapes),
                    dtype_dict=dict(model.input_dtypes), keep_params_in_input=False)
    mod = relax.transform.DecomposeOpsForInference()(mod)
    executable = relax.build(mod, target=TargetSpec("cpu").for_share(Share("cpu", 100)))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(a) for a in inputs])
    outputs = [out] if isinstance(out, tvm.runtime.Tensor) else list(out)
    return dict(zip([o.name for o in graph.graph.output], (o.numpy() for o in outputs)))


def _diff(value: str, got: np.ndarray, want: np.ndarray) -> tuple[float, float, str, str] | None:
    if got.shape != want.shape:
        return float("inf"), 0.0, _summary(got), _summary(want)
    agreement = compare([got], [want])  # the same inf or nan at the same place agrees
    if agreement.ok:
        return None
    return agreement.max_abs_error, agreement.tolerance, _summary(got), _summary(want)


def _summary(array: np.ndarray) -> str:
    finite = array[np.isfinite(array)]
    stats = (f"min {finite.min():.4g}, max {finite.max():.4g}, mean {finite.mean():.4g}"
             if finite.size else "no finite value")
    return (f"shape {list(array.shape)}, {stats}, {int(np.isinf(array).sum())} inf, "
            f"{int(np.isnan(array).sum())} nan")


def describe(diff: ValueDiff | None) -> str:
    if diff is None:
        return ("every intermediate value matches onnxruntime with TVM's default schedules: "
                "the difference comes from tuned kernels or the final tolerance")
    rewritten = ("" if diff.prepared_op_type == diff.op_type
                 else f", prepared for TVM as {diff.prepared_op_type}")
    return (f"first difference: node {diff.node} ({diff.op_type}{rewritten}), "
            f"output {diff.value!r}: "
            f"max abs error {diff.max_abs_error:.3g} (tolerance {diff.tolerance:.3g})\n"
            f"  TVM:         {diff.tvm}\n  onnxruntime: {diff.reference}\n"
            f"  changed by:  {_CAUSES[diff.cause]}")


_CAUSES = {"TVM": "TVM (onnxruntime computes the graph tunesvc prepared for TVM as given)",
           "preparation": "tunesvc's preparation of the graph for TVM (onnxruntime computes "
                          "the prepared graph as TVM does)"}
