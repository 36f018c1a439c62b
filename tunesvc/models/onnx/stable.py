"""Operators TVM's ONNX importer computes otherwise than the ONNX spec and onnxruntime,
rewritten into operators it computes right (a part of preparing a graph for TVM):

- MeanVarianceNormalization: TVM takes the variance as mean(x^2) - mean(x)^2, which
  cancels to 0 (and the output to inf or nan) when the mean is large against the spread,
  e.g. features offset far from 0; rewritten as mean((x - mean)^2), as onnxruntime does.
- IsInf with detect_positive=0 or detect_negative=0: TVM ignores both attributes;
  rewritten as the comparison the attributes ask for.
"""

from __future__ import annotations

import numpy as np
import onnx

from tunesvc.models.onnx.graph import Emitter

REDUCE_AXES_AS_INPUT = 18  # opset from which ReduceMean takes its axes as an input
MVN_DEFAULT_AXES = [0, 2, 3]


def stable_operators(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the operators above rewritten (unchanged if it has none)."""
    if not any(node.op_type in REWRITES for node in model.graph.node):
        return model
    emitter = Emitter(model)
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        rewrite = REWRITES.get(node.op_type)
        value = rewrite(emitter, node) if rewrite is not None else None
        if value is None:
            nodes.append(node)
            continue
        nodes.extend(emitter.nodes)
        nodes.append(onnx.helper.make_node("Identity", [value], [node.output[0]], name=node.name))
        emitter.nodes = []
    return emitter.rewritten(nodes)


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else onnx.helper.get_attribute_value(found)


def _mean(e: Emitter, x: str, axes: list[int]) -> str:
    if e.opset >= REDUCE_AXES_AS_INPUT:
        return e.op("ReduceMean", [x, e.const(np.array(axes, np.int64))], keepdims=1)
    return e.op("ReduceMean", [x], axes=axes, keepdims=1)


def _mean_variance_normalization(e: Emitter, node: onnx.NodeProto) -> str | None:
    axes = list(_attribute(node, "axes", MVN_DEFAULT_AXES))  # type: ignore[call-overload]
    x = node.input[0]
    centred = e.op("Sub", [x, _mean(e, x, axes)])
    variance = _mean(e, e.op("Mul", [centred, centred]), axes)
    return e.op("Div", [centred, e.op("Sqrt", [variance])])


def _is_inf(e: Emitter, node: onnx.NodeProto) -> str | None:
    positive = _attribute(node, "detect_positive", 1)
    negative = _attribute(node, "detect_negative", 1)
    if positive and negative:
        return None  # what TVM computes already
    x = node.input[0]
    if positive:
        return e.op("Equal", [x, e.const(np.array(np.inf, np.float32))])
    if negative:
        return e.op("Equal", [x, e.const(np.array(-np.inf, np.float32))])
    return e.op("Equal", [x, e.const(np.array(np.nan, np.float32))])  # never true


REWRITES = {"MeanVarianceNormalization": _mean_variance_normalization, "IsInf": _is_inf}
