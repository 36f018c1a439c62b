"""Small ONNX graphs, one per kind of graph that exporters produce and TVM's ONNX import
cannot take as it is: shape computations, `-1` and named dimensions, scalar and integer
inputs, recurrent layers, an operator TVM has no converter for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
_rng = np.random.default_rng(7)


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(_rng.standard_normal(shape).astype(np.float32), name)


def _save(path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], weights: list[onnx.TensorProto],
          opset: int = OPSET) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _value(name: str, dims: list[int | str | None] | None,
           elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def shape_subgraph(path: Path) -> Path:
    """x [batch, 4, 6] -> Reshape(x, [Shape(x)[0], -1]) -> MatMul: the new shape is
    computed in the graph (Shape -> Gather -> Unsqueeze -> Concat), as exporters write a
    flatten; the batch dimension is named."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["new_shape"], axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["y"]),
    ]
    weights = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
               numpy_helper.from_array(np.array([0], np.int64), "axes"),
               numpy_helper.from_array(np.array([-1], np.int64), "minus_one"), _weight("w", 24, 5)]
    return _save(path, nodes, [_value("x", ["batch", 4, 6])], [_value("y", ["batch", 5])],
                 weights)


def minus_one_dim(path: Path) -> Path:
    """An input declared with -1 (and ?) dimensions: x [-1, 3, ?, ?] -> Relu."""
    x = _value("x", [1, 3, None, None])
    x.type.tensor_type.shape.dim[0].dim_value = -1
    return _save(path, [helper.make_node("Relu", ["x"], ["y"])], [x],
                 [_value("y", [None, 3, None, None])], [])


def dynamic_batch(path: Path) -> Path:
    """An input whose only dynamic dimension is the batch: x [?, 3, 4] -> Relu."""
    return _save(path, [helper.make_node("Relu", ["x"], ["y"])], [_value("x", [None, 3, 4])],
                 [_value("y", [None, 3, 4])], [])


def scatter_gather(path: Path) -> Path:
    """x [3, 4] -> Relu -> ScatterElements (axis 1, updates u [2, 4]) -> GatherND -> y,
    as graph networks write them (TVM computes ScatterElements in one opaque block)."""
    indices = numpy_helper.from_array(np.array([[0, 1, 2, 0], [1, 2, 0, 1]], np.int64), "idx")
    rows = numpy_helper.from_array(np.array([[0], [2]], np.int64), "rows")
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("ScatterElements", ["r", "idx", "u"], ["s"], axis=1),
             helper.make_node("GatherND", ["s", "rows"], ["y"])]
    return _save(path, nodes, [_value("x", [3, 4]), _value("u", [2, 4])],
                 [_value("y", [2, 4])], [indices, rows])


def data_if(path: Path) -> Path:
    """An `If` on a value computed at run time: y = x * 2 if mean(x) >= 0 else -x."""
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["doubled"])], "then",
                             [], [_value("doubled", [2, 3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["negated"])], "else",
                              [], [_value("negated", [2, 3])])
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
             helper.make_node("GreaterOrEqual", ["mean", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["y"], then_branch=then, else_branch=other)]
    return _save(path, nodes, [_value("x", [2, 3])], [_value("y", [2, 3])], [zero, two])


def scalar_inputs(path: Path) -> Path:
    """A float scalar (a gain) and an int64 scalar (a sample rate, as audio models take):
    y = x * gain + Cast(rate)."""
    nodes = [helper.make_node("Mul", ["x", "gain"], ["scaled"]),
             helper.make_node("Cast", ["rate"], ["rate_f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["scaled", "rate_f"], ["y"])]
    inputs = [_value("x", [2, 3]), _value("gain", []), _value("rate", [], TensorProto.INT64)]
    return _save(path, nodes, inputs, [_value("y", [2, 3])], [])


def recurrent(path: Path, op: str = "LSTM", direction: str = "bidirectional") -> Path:
    """x [seq 6, batch 1, 8] -> LSTM/GRU (hidden 5) with biases and initial states -> Y."""
    gates, directions, hidden = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 2 if direction == \
        "bidirectional" else 1, 5
    states = ["h0", "c0"] if op == "LSTM" else ["h0"]
    node = helper.make_node(op, ["x", "W", "R", "B", "", *states], ["y", "y_h"],
                            hidden_size=hidden, direction=direction)
    weights = [_weight("W", directions, gates * hidden, 8),
               _weight("R", directions, gates * hidden, hidden),
               _weight("B", directions, 2 * gates * hidden)]
    inputs = [_value("x", [6, 1, 8])] + [_value(s, [directions, 1, hidden]) for s in states]
    outputs = [_value("y", [6, directions, 1, hidden]), _value("y_h", [directions, 1, hidden])]
    return _save(path, [node], inputs, outputs, weights)


def unsupported_op(path: Path) -> Path:
    """x [2, 3, 3] -> Det: an operator TVM's ONNX import has no converter for."""
    return _save(path, [helper.make_node("Det", ["x"], ["y"], name="det_1")],
                 [_value("x", [2, 3, 3])], [_value("y", [2])], [])


def branch_on_scalar(path: Path) -> Path:
    """y = If(rate == 16000, then: x @ W16 (inside, If(Shape(x)[0] == 2, Relu, Neg)),
    else: Neg(x @ W8)): the whole graph in branches on a sample-rate scalar, as
    voice-activity models are exported; the inner branch is decided by the input shape."""
    inner_then = helper.make_graph([helper.make_node("Relu", ["m16"], ["r"])], "inner_then", [],
                                   [_value("r", [None, 3])])
    inner_else = helper.make_graph([helper.make_node("Neg", ["m16"], ["n"])], "inner_else", [],
                                   [_value("n", [None, 3])])
    then_nodes = [helper.make_node("MatMul", ["x", "W16"], ["m16"]),
                  helper.make_node("Shape", ["x"], ["shape"]),
                  helper.make_node("Gather", ["shape", "zero"], ["rows"], axis=0),
                  helper.make_node("Equal", ["rows", "two"], ["is_two"]),
                  helper.make_node("If", ["is_two"], ["t"], then_branch=inner_then,
                                   else_branch=inner_else)]
    then_g = helper.make_graph(then_nodes, "then", [], [_value("t", [None, 3])])
    else_g = helper.make_graph([helper.make_node("MatMul", ["x", "W8"], ["m8"]),
                                helper.make_node("Neg", ["m8"], ["e"])], "else", [],
                               [_value("e", [None, 3])])
    nodes = [helper.make_node("Equal", ["rate", "r16k"], ["is_16k"]),
             helper.make_node("If", ["is_16k"], ["y"], then_branch=then_g, else_branch=else_g)]
    weights = [_weight("W16", 4, 3), _weight("W8", 4, 3),
               numpy_helper.from_array(np.array(16000, np.int64), "r16k"),
               numpy_helper.from_array(np.array(0, np.int64), "zero"),
               numpy_helper.from_array(np.array(2, np.int64), "two")]
    inputs = [_value("x", ["rows", 4]), _value("rate", [], TensorProto.INT64)]
    return _save(path, nodes, inputs, [_value("y", [None, 3])], weights)


def mlp_and_a_layer(path: Path) -> Path:
    """zoo:mlp's two layers (same shapes, other weights) and a third, 32 -> 16: a second
    model that shares two workloads with zoo:mlp."""
    from tunesvc.models.zoo import INPUT_NAME, GraphBuilder

    g = GraphBuilder(seed=5)
    hidden = g.relu(g.dense(INPUT_NAME, 64, 128))
    onnx.save(g.model("mlp_and_a_layer", (8, 64), g.dense(g.dense(hidden, 128, 32), 32, 16),
                      (8, 16)), str(path))
    return path


def transposed_conv(path: Path) -> Path:
    """x [1, 16, 12, 12] -> ConvTranspose (2x2, stride 2, 16 channels -> 1, bias) ->
    Sigmoid: the upsampling head of a text detector (PP-OCR's DB head ends so)."""
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["up"], kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Sigmoid", ["up"], ["y"])]
    return _save(path, nodes, [_value("x", [1, 16, 12, 12])], [_value("y", [1, 1, 24, 24])],
                 [_weight("w", 16, 1, 2, 2), _weight("b", 1)])
