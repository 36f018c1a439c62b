"""Built-in models, defined in code as ONNX graphs with fixed-seed random weights.

Nothing is downloaded: the graphs have the layer structure of the named networks (BatchNorm
folded into convolution biases, as inference graphs have it), so they tune and run like the
real ones; their weights are random, so their outputs mean nothing. Every zoo model takes one
input named `input`; its shape (batch, image size) is whatever the caller asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
INPUT_NAME = "input"
CLASSES = 1000


@dataclass
class GraphBuilder:
    """Accumulates ONNX nodes and initializers; names are generated, weights seeded."""

    seed: int = 0
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    weights: list[onnx.TensorProto] = field(default_factory=list)
    _counter: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        # He initialisation keeps activations in a sane range through deep stacks.
        values = self._rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        name = self._name("w")
        self.weights.append(numpy_helper.from_array(values.astype(np.float32), name))
        return name

    def bias(self, size: int) -> str:
        name = self._name("b")
        values = self._rng.uniform(-0.1, 0.1, size).astype(np.float32)
        self.weights.append(numpy_helper.from_array(values, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        output = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output

    def conv(self, x: str, c_in: int, c_out: int, kernel: int, stride: int = 1,
             groups: int = 1) -> str:
        w = self.weight((c_out, c_in // groups, kernel, kernel), fan_in=c_in // groups * kernel**2)
        pad = kernel // 2
        return self.op("Conv", [x, w, self.bias(c_out)], kernel_shape=[kernel, kernel],
                       strides=[stride, stride], pads=[pad] * 4, group=groups)

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def relu6(self, x: str) -> str:
        low = self._scalar(0.0)
        high = self._scalar(6.0)
        return self.op("Clip", [x, low, high])

    def _scalar(self, value: float) -> str:
        name = self._name("c")
        self.weights.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name

    def dense(self, x: str, n_in: int, n_out: int) -> str:
        w = self.weight((n_in, n_out), fan_in=n_in)
        return self.op("Add", [self.op("MatMul", [x, w]), self.bias(n_out)])

    def classifier(self, x: str, channels: int, classes: int) -> str:
        pooled = self.op("GlobalAveragePool", [x])
        return self.dense(self.op("Flatten", [pooled], axis=1), channels, classes)

    def model(self, name: str, input_shape: tuple[int, ...], output: str,
              output_shape: tuple[int, ...]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(input_shape))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))],
            self.weights,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def mlp(input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """A two-layer perceptron, tiny enough to tune in seconds (for tests and demos)."""
    g = GraphBuilder(seed=1)
    features = input_shape[-1]
    hidden = g.relu(g.dense(INPUT_NAME, features, 128))
    return g.model("mlp", input_shape, g.dense(hidden, 128, 32), (*input_shape[:-1], 32))


def convnet(input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """Two 3x3 convolutions with a residual add, small enough to tune in seconds: the
    smallest model whose convolutions have Winograd variants."""
    g = GraphBuilder(seed=3)
    channels = input_shape[1]
    y = g.relu(g.conv(INPUT_NAME, channels, channels, 3))
    y = g.relu(g.op("Add", [g.conv(y, channels, channels, 3), INPUT_NAME]))
    return g.model("convnet", input_shape, y, input_shape)


def _basic_block(g: GraphBuilder, x: str, c_in: int, c_out: int, stride: int) -> str:
    y = g.relu(g.conv(x, c_in, c_out, 3, stride))
    y = g.conv(y, c_out, c_out, 3)
    shortcut = x if stride == 1 and c_in == c_out else g.conv(x, c_in, c_out, 1, stride)
    return g.relu(g.op("Add", [y, shortcut]))


def resnet18(input_shape: tuple[int, ...]) -> onnx.ModelProto:
    g = GraphBuilder(seed=18)
    x = g.relu(g.conv(INPUT_NAME, input_shape[1], 64, 7, stride=2))
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = _basic_block(g, x, c_in, c_out, stride)
        x = _basic_block(g, x, c_out, c_out, 1)
        c_in = c_out
    return g.model("resnet18", input_shape, g.classifier(x, 512, CLASSES), (input_shape[0], CLASSES))


# (expansion, output channels, repeats, first stride) per stage, as in MobileNetV2.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _inverted_residual(g: GraphBuilder, x: str, c_in: int, c_out: int, stride: int,
                       expansion: int) -> str:
    hidden = c_in * expansion
    y = g.relu6(g.conv(x, c_in, hidden, 1)) if expansion != 1 else x
    y = g.relu6(g.conv(y, hidden, hidden, 3, stride, groups=hidden))
    y = g.conv(y, hidden, c_out, 1)
    return g.op("Add", [y, x]) if stride == 1 and c_in == c_out else y


def inverted_residual(input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """One MobileNetV2 block at stride 2 (1x1 expansion x3, 3x3 depthwise, 1x1
    projection), small enough to tune in seconds: the smallest model with a fusable pair."""
    g = GraphBuilder(seed=5)
    channels, size = input_shape[1], input_shape[2]
    y = _inverted_residual(g, INPUT_NAME, channels, 2 * channels, 2, 3)
    out_size = (size - 1) // 2 + 1
    return g.model("inverted_residual", input_shape, y,
                   (input_shape[0], 2 * channels, out_size, out_size))


def mobilenet_v2(input_shape: tuple[int, ...]) -> onnx.ModelProto:
    g = GraphBuilder(seed=2)
    x = g.relu6(g.conv(INPUT_NAME, input_shape[1], 32, 3, stride=2))
    c_in = 32
    for expansion, c_out, repeats, first_stride in MOBILENET_V2_STAGES:
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            x = _inverted_residual(g, x, c_in, c_out, stride, expansion)
            c_in = c_out
    x = g.relu6(g.conv(x, c_in, 1280, 1))
    return g.model("mobilenet_v2", input_shape, g.classifier(x, 1280, CLASSES),
                   (input_shape[0], CLASSES))


@dataclass(frozen=True)
class ZooEntry:
    build: Callable[[tuple[int, ...]], onnx.ModelProto]
    default_shape: tuple[int, ...]
    summary: str


ZOO: dict[str, ZooEntry] = {
    "mlp": ZooEntry(mlp, (8, 64), "2-layer perceptron 64->128->32; tunes in seconds"),
    "convnet": ZooEntry(convnet, (1, 16, 16, 16),
                        "two 3x3 convolutions 16->16 and a residual add; tunes in seconds"),
    "invres": ZooEntry(inverted_residual, (1, 8, 16, 16),
                       "one MobileNetV2 block at stride 2, 8->16 channels; tunes in seconds"),
    "resnet18": ZooEntry(resnet18, (1, 3, 224, 224), "ResNet-18 layer structure, BN folded"),
    "mobilenet_v2": ZooEntry(mobilenet_v2, (1, 3, 224, 224),
                             "MobileNetV2 layer structure, depthwise convolutions"),
}
