"""Inputs fixed to a value, and the `If` nodes that become decidable once they are.

Exported models branch on inputs that stay the same for a deployment (a sample rate, a
mode flag) and on shapes that are fixed once input shapes are. TVM's ONNX import has no
`If`. A scalar input given a value (`--input-value sr=16000`) becomes a constant; after
folding, an `If` whose condition is a constant is replaced by the branch it takes, and
the fold runs again, since branches hold `If`s of their own.

An `If` on a value computed at run time (a wake-word model runs a verifier only when its
first score passes a threshold) becomes both branches and a `Where` on the condition for
each output: the answer is the branch the condition takes, at the cost of computing
both. Only where both branches give tensors of one element type each.

Never: inline a branch whose names clash with the enclosing graph's or the other
branch's (it stays an `If`, and the import names it as unsupported).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from tunesvc.models.onnx.graph import Emitter, rewrite_nodes


def with_input_values(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose inputs named in `values` are constants of those values."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [value for value in out.graph.input if value.name not in values]
    out.graph.ClearField("input")
    out.graph.input.extend(kept)
    out.graph.initializer.extend(numpy_helper.from_array(array, name)
                                 for name, array in values.items())
    return out


def inline_constant_ifs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """`model` with each top-level `If` whose condition is a constant replaced by the
    branch it takes; and how many were replaced."""
    emitter = Emitter(model)
    taken = set(_graph_names(model.graph))
    nodes: list[onnx.NodeProto] = []
    inlined = 0
    for node in model.graph.node:
        branch = _taken_branch(emitter, node)
        if branch is None or taken & set(_graph_names(branch)):
            nodes.append(node)
            continue
        nodes.extend(branch.node)
        emitter.initializers.extend(branch.initializer)
        nodes.extend(onnx.helper.make_node("Identity", [inner.name], [outer])
                     for inner, outer in zip(branch.output, node.output))
        inlined += 1
    return emitter.rewritten(nodes), inlined


def _taken_branch(emitter: Emitter, node: onnx.NodeProto) -> onnx.GraphProto | None:
    if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
        return None
    condition = emitter.initializer_value(node.input[0])
    if condition is None or condition.size != 1:
        return None
    branches = {a.name: a.g for a in node.attribute}
    return branches["then_branch" if bool(condition.reshape(())) else "else_branch"]


def _graph_names(graph: onnx.GraphProto) -> list[str]:
    """Names a graph defines at its own level (node outputs and initializers)."""
    return [name for node in graph.node for name in node.output if name] + \
        [t.name for t in graph.initializer]


def select_data_ifs(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each top-level `If` on a run-time condition replaced by both branches
    and a `Where` per output (unchanged where there is none, or a branch cannot be)."""
    if not any(node.op_type == "If" for node in model.graph.node):
        return model
    taken = set(_graph_names(model.graph))

    def select(emitter: Emitter, node: onnx.NodeProto) -> bool:
        branches = _selectable(node, taken)
        if branches is None:
            return False
        then, other = branches
        taken.update(_graph_names(then), _graph_names(other))  # for the next If's check
        emitter.nodes.extend([*then.node, *other.node])
        emitter.initializers.extend([*then.initializer, *other.initializer])
        condition = emitter.op("Reshape", [node.input[0], emitter.const(np.zeros(0, np.int64))])
        for outer, yes, no in zip(node.output, then.output, other.output):
            emitter.op("Where", [condition, yes.name, no.name], output=outer)
        return True

    return rewrite_nodes(model, select)


def _selectable(node: onnx.NodeProto,
                taken: set[str]) -> tuple[onnx.GraphProto, onnx.GraphProto] | None:
    """The `If`'s two branches, if both can be computed side by side and selected from."""
    if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
        return None
    branches = {a.name: a.g for a in node.attribute}
    then, other = branches["then_branch"], branches["else_branch"]
    then_names, other_names = set(_graph_names(then)), set(_graph_names(other))
    if taken & (then_names | other_names) or then_names & other_names:
        return None
    if not len(then.output) == len(other.output) == len(node.output):
        return None
    for yes, no in zip(then.output, other.output):
        if not (yes.type.HasField("tensor_type") and no.type.HasField("tensor_type")):
            return None
        if yes.type.tensor_type.elem_type != no.type.tensor_type.elem_type:
            return None
    return then, other
