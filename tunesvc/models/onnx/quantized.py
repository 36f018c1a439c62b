"""Integer operators onnxruntime's quantizers write, rewritten into operators TVM's ONNX
import converts and computes as the spec says (a part of preparing a graph for TVM):

- ConvInteger (no converter): zero points subtracted in int32, the convolution in float32
  on those integers (exact while the sums stay below 2^24), cast back to int32.
- MatMulIntegerToFloat (com.microsoft, no converter): MatMulInteger, then scaled in float.
- QLinearConv, QLinearMatMul and com.microsoft QLinearAdd and QLinearMul (no converter):
  dequantized, computed in float, quantized again (within one quantization step of
  onnxruntime's integer kernels).
- DynamicQuantizeLSTM (com.microsoft, no converter): its int8 weights, stored transposed
  ([directions, input, 4 x hidden]) with a scale and zero point per direction or per
  column, dequantized and laid out as ONNX's LSTM takes them; then an LSTM in float (which
  preparation unrolls), within the error of onnxruntime's dynamic quantization of the input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from tunesvc.models.onnx.graph import Emitter, rewrite_nodes

INT32, FLOAT = onnx.TensorProto.INT32, onnx.TensorProto.FLOAT
MICROSOFT = "com.microsoft"


def quantized_operators(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the operators above rewritten (unchanged if it has none)."""
    if not any(_key(node) in REWRITES for node in model.graph.node):
        return model
    def integer_free(emitter: Emitter, node: onnx.NodeProto) -> bool:
        rewrite = REWRITES.get(_key(node))
        if rewrite is not None:
            rewrite(emitter, node)  # writes the node's own output names
        return rewrite is not None

    return rewrite_nodes(model, integer_free)


def _key(node: onnx.NodeProto) -> str:
    return f"{MICROSOFT}.{node.op_type}" if node.domain == MICROSOFT else node.op_type


def _input(node: onnx.NodeProto, index: int) -> str | None:
    return node.input[index] if len(node.input) > index and node.input[index] else None


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _centred(e: Emitter, x: str, zero_point: str | None, channel_rank: int) -> str:
    """`x - zero_point` in int32, as float32; a per-channel zero point (1-D) is laid along
    axis 0 of a tensor of `channel_rank` dimensions."""
    value = e.op("Cast", [x], to=INT32)
    if zero_point is not None:
        zp = e.op("Cast", [zero_point], to=INT32)
        if channel_rank > 1:
            shape = np.array([-1] + [1] * (channel_rank - 1), np.int64)
            zp = e.op("Reshape", [zp, e.const(shape)])
        value = e.op("Sub", [value, zp])
    return e.op("Cast", [value], to=FLOAT)


def _conv_integer(e: Emitter, node: onnx.NodeProto) -> None:
    weight = e.initializer_value(node.input[1])
    rank = weight.ndim if weight is not None else 4
    zp_w = _input(node, 3)
    zp_w_value = e.initializer_value(zp_w) if zp_w else None
    per_channel = zp_w_value is not None and zp_w_value.size > 1
    x = _centred(e, node.input[0], _input(node, 2), 1)
    w = _centred(e, node.input[1], zp_w, rank if per_channel else 1)
    summed = e.op("Conv", [x, w], **_attrs(node))
    e.op("Cast", [summed], output=node.output[0], to=INT32)


def _matmul_integer_to_float(e: Emitter, node: onnx.NodeProto) -> None:
    a, b, a_scale, b_scale = node.input[:4]
    zero_points = [name for name in (_input(node, 4), _input(node, 5))]
    inputs = [a, b, *(zp or "" for zp in zero_points)]
    while inputs and not inputs[-1]:
        inputs.pop()
    product = e.op("Cast", [e.op("MatMulInteger", inputs)], to=FLOAT)
    scaled = e.op("Mul", [product, e.op("Mul", [a_scale, b_scale])])
    bias = _input(node, 6)
    e.op("Add" if bias else "Identity", [scaled, bias] if bias else [scaled],
         output=node.output[0])


def _dequantized(e: Emitter, x: str, scale: str, zero_point: str, axis: int) -> str:
    """`x` in float; a scale per channel (1-D) is laid along `axis`."""
    value = e.initializer_value(scale)
    per_channel = value is not None and value.size > 1
    return e.op("DequantizeLinear", [x, scale, zero_point], **({"axis": axis} if per_channel else {}))


def _qlinear_conv(e: Emitter, node: onnx.NodeProto) -> None:
    x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp = node.input[:8]
    inputs = [_dequantized(e, x, x_s, x_zp, 1), _dequantized(e, w, w_s, w_zp, 0)]
    bias = _input(node, 8)
    if bias is not None:  # int32, at scale x_s * w_s
        inputs.append(e.op("Mul", [e.op("Cast", [bias], to=FLOAT), e.op("Mul", [x_s, w_s])]))
    result = e.op("Conv", inputs, **_attrs(node))
    e.op("QuantizeLinear", [result, y_s, y_zp], output=node.output[0])


def _qlinear_matmul(e: Emitter, node: onnx.NodeProto) -> None:
    a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = node.input[:8]
    b_value = e.initializer_value(b)
    column_axis = b_value.ndim - 1 if b_value is not None else 1  # per-column scales
    result = e.op("MatMul", [_dequantized(e, a, a_s, a_zp, 1),
                             _dequantized(e, b, b_s, b_zp, column_axis)])
    e.op("QuantizeLinear", [result, y_s, y_zp], output=node.output[0])


def _qlinear_binary(op_type: str) -> Callable[[Emitter, onnx.NodeProto], None]:
    """com.microsoft QLinearAdd, QLinearMul: both sides dequantized, `op_type`, quantized."""
    def rewrite(e: Emitter, node: onnx.NodeProto) -> None:
        a, a_s, a_zp, b, b_s, b_zp, y_s = node.input[:7]
        y_zp = _input(node, 7)
        result = e.op(op_type, [_dequantized(e, a, a_s, a_zp, 1),
                                _dequantized(e, b, b_s, b_zp, 1)])
        e.op("QuantizeLinear", [result, y_s, *([y_zp] if y_zp else [])], output=node.output[0])

    return rewrite


def _dynamic_quantize_lstm(e: Emitter, node: onnx.NodeProto) -> None:
    inputs = list(node.input) + [""] * (12 - len(node.input))
    weights = [_lstm_weight(e, inputs[w], inputs[scale], inputs[scale + 1])
               for w, scale in ((1, 8), (2, 10))]
    attrs = _attrs(node)
    lstm = onnx.helper.make_node("LSTM", [inputs[0], *weights, *inputs[3:8]], list(node.output),
                                 name=e.fresh("LSTM"), **attrs)
    while lstm.input and not lstm.input[-1]:
        lstm.input.pop()
    e.nodes.append(lstm)


def _lstm_weight(e: Emitter, quantized: str, scale: str, zero_point: str) -> str:
    """[directions, rows, 4 x hidden] int8 to ONNX's float [directions, 4 x hidden, rows];
    a scale (and zero point) of shape [directions] or [directions, 4 x hidden]."""
    value = e.initializer_value(scale)
    per_column = value is not None and value.ndim == 2

    def spread(x: str) -> str:  # against [directions, rows, 4 x hidden]
        if per_column:
            return e.unsqueeze(x, 1)
        return e.op("Reshape", [x, e.const(np.array([-1, 1, 1], np.int64))])

    centred = e.op("Cast", [quantized], to=INT32)
    if zero_point:
        centred = e.op("Sub", [centred, spread(e.op("Cast", [zero_point], to=INT32))])
    real = e.op("Mul", [e.op("Cast", [centred], to=FLOAT), spread(scale)])
    return e.op("Transpose", [real], perm=[0, 2, 1])


REWRITES = {
    "ConvInteger": _conv_integer,
    f"{MICROSOFT}.MatMulIntegerToFloat": _matmul_integer_to_float,
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    f"{MICROSOFT}.QLinearAdd": _qlinear_binary("Add"),
    f"{MICROSOFT}.QLinearMul": _qlinear_binary("Mul"),
    f"{MICROSOFT}.DynamicQuantizeLSTM": _dynamic_quantize_lstm,
}
