"""Small tools to rewrite an ONNX graph: emit nodes under fresh names, read static shapes."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from tunesvc.errors import first_line

log = logging.getLogger(__name__)

# Operators whose axes moved from an attribute to an input (opset where they did).
AXES_AS_INPUT = {"Unsqueeze": 13, "Slice": 10, "Clip": 11}


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every value whose shape is fully known after ONNX shape inference."""
    graph = inferred_shapes(model, "the graph").graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def inferred_shapes(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """`model` with its shapes inferred. Where the graph's own value_info contradicts what
    onnx infers (exporters leave stale types there), inference starts again without it;
    where it still fails, the graph goes on as it is (TVM's importer infers its own)."""
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # InferenceError, ValidationError, ...
        log.warning("%s: shape inference failed (%s); trying without its value_info",
                    source, first_line(exc))
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(bare)
    except Exception as exc:
        log.warning("%s: shape inference failed again (%s); going on without it", source,
                    first_line(exc))
        return model


class Emitter:
    """Appends nodes (to `nodes`) and constants (to `initializers`) for a graph, naming
    each output freshly so nothing clashes with the graph's own names."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.opset = default_opset(model)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._weights = {t.name: t for t in model.graph.initializer}
        self._weights.update({node.output[0]: node.attribute[0].t for node in model.graph.node
                              if node.op_type == "Constant" and node.attribute
                              and node.attribute[0].name == "value"})
        self._counter = 0
        graph = model.graph
        self._taken = {name for node in graph.node for name in (*node.output, node.name)}
        self._taken.update(value.name for value in (*graph.initializer, *graph.input))

    def rewritten(self, nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
        """A copy of the model with `nodes` as its nodes, plus the constants emitted."""
        out = onnx.ModelProto()
        out.CopyFrom(self.model)
        out.graph.ClearField("node")
        out.graph.node.extend(nodes)
        out.graph.initializer.extend(self.initializers)
        return out

    def fresh(self, prefix: str) -> str:
        """A name no value or node of the graph has (an earlier rewrite's included)."""
        while True:
            self._counter += 1
            name = f"tunesvc_{prefix}_{self._counter}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None,
           **attrs: object) -> str:
        name = output or self.fresh(op_type.lower())
        self.nodes.append(onnx.helper.make_node(op_type, inputs, [name],
                                                name=self.fresh(op_type), **attrs))
        return name

    def const(self, array: np.ndarray) -> str:
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def initializer_value(self, name: str) -> np.ndarray | None:
        """The value of a constant (an initializer or a Constant node's output)."""
        tensor = self._weights.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def dtype_of(self, name: str) -> np.dtype:
        value = self.initializer_value(name)
        return value.dtype if value is not None else np.dtype(np.float32)

    def unsqueeze(self, x: str, axis: int) -> str:
        if self.opset >= AXES_AS_INPUT["Unsqueeze"]:
            return self.op("Unsqueeze", [x, self.const(np.array([axis], np.int64))])
        return self.op("Unsqueeze", [x], axes=[axis])

    def slice(self, x: str, start: int, end: int, axis: int) -> str:
        if self.opset >= AXES_AS_INPUT["Slice"]:
            bounds = [self.const(np.array([v], np.int64)) for v in (start, end, axis)]
            return self.op("Slice", [x, *bounds])
        return self.op("Slice", [x], starts=[start], ends=[end], axes=[axis])

    def clip(self, x: str, limit: float, dtype: np.dtype) -> str:
        if self.opset >= AXES_AS_INPUT["Clip"]:
            low, high = (self.const(np.array(v, dtype)) for v in (-limit, limit))
            return self.op("Clip", [x, low, high])
        return self.op("Clip", [x], min=-limit, max=limit)

    def concat(self, xs: list[str], axis: int) -> str:
        return xs[0] if len(xs) == 1 else self.op("Concat", xs, axis=axis)

    def finish(self, x: str, name: str, perm: list[int] | None) -> None:
        """Write `x` under the graph's own output name `name` (transposed by `perm`)."""
        if perm:
            self.op("Transpose", [x], output=name, perm=perm)
        else:
            self.op("Identity", [x], output=name)


def rewrite_nodes(model: onnx.ModelProto,
                  rewrite: Callable[[Emitter, onnx.NodeProto], bool]) -> onnx.ModelProto:
    """A copy of `model` in which each node that `rewrite` takes (it emits the node's
    replacement, writing the node's own output names, and returns True) is replaced."""
    emitter = Emitter(model)
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        emitter.nodes = []
        if rewrite(emitter, node):
            nodes.extend(emitter.nodes)
        else:
            nodes.append(node)
    return emitter.rewritten(nodes)
