"""Recurrent ONNX layers (LSTM, GRU, RNN) unrolled into operators TVM imports.

TVM's ONNX import has no recurrent layers. At a fixed sequence length each one is a chain
of MatMul, Add, Mul and activations, one link per time step, following the ONNX operator
definitions: gate order iofc (LSTM) and zrh (GRU), `forward`/`reverse`/`bidirectional`,
optional biases, initial states and LSTM peepholes, `layout` 0 and 1, `clip`, GRU's
`linear_before_reset`. The input projection of all time steps is one MatMul; each step
adds the recurrent projection. Not supported (one-line error): sequence lengths given at
run time, LSTM `input_forget`, activations other than Sigmoid/Tanh/Relu or with
parameters.
"""

from __future__ import annotations

import numpy as np
import onnx

from tunesvc.errors import UserError
from tunesvc.models.onnx.graph import Emitter, static_shapes
from tunesvc.models.onnx.rnn_cells import CELLS, Cell, DirectionInputs, StepInputs

RECURRENT_OPS = tuple(CELLS)


def unroll_recurrent(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """A copy of `model` with every LSTM/GRU/RNN node replaced by its unrolled steps."""
    shapes = static_shapes(model)
    emitter = Emitter(model)
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.op_type in CELLS and node.domain in ("", "ai.onnx"):
            emitter.nodes = []
            _unroll(emitter, node, shapes, source)
            nodes.extend(emitter.nodes)
        else:
            nodes.append(node)
    return emitter.rewritten(nodes)


def _unroll(emitter: Emitter, node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]],
            source: str) -> None:
    cell = CELLS[node.op_type]()
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    cell.check(node, attrs, source)
    inputs = list(node.input) + [""] * (8 - len(node.input))
    x = inputs[0]
    if x not in shapes:
        raise UserError(f"{source}: cannot unroll {node.op_type} node {node.name!r}: the "
                        f"shape of its input {x!r} is not known after shape inference")
    layout = int(attrs.get("layout", 0))
    seq_x = emitter.op("Transpose", [x], perm=[1, 0, 2]) if layout else x
    seq_len, batch = (shapes[x][1], shapes[x][0]) if layout else shapes[x][:2]
    _check_sequence_lens(emitter, node, inputs[4], seq_len, source)
    hidden = int(attrs["hidden_size"])
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    reverse = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]
    activations = cell.activations(attrs, len(reverse))
    results = []
    for index, backward in enumerate(reverse):
        d = DirectionInputs(emitter, inputs, index, hidden, batch, activations[index],
                            attrs.get("clip"), cell.gates, layout)
        results.append(_run_direction(emitter, cell, d, seq_x, seq_len, backward))
    _outputs(emitter, node, results, layout)


def _check_sequence_lens(emitter: Emitter, node: onnx.NodeProto, name: str, full: int,
                         source: str) -> None:
    if not name:
        return
    value = emitter.initializer_value(name)
    if value is None:
        raise UserError(f"{source}: {node.op_type} node {node.name!r} takes sequence lengths "
                        f"at run time ({name!r}); recurrent layers are unrolled at a fixed "
                        f"length, so every sequence must be full length")
    if np.any(value != full):
        raise UserError(f"{source}: {node.op_type} node {node.name!r} has sequence lengths "
                        f"{value.tolist()} shorter than its input ({full} steps)")


def _run_direction(emitter: Emitter, cell: Cell, d: DirectionInputs, seq_x: str, seq_len: int,
                   backward: bool) -> tuple[list[str], str, str | None]:
    """Hidden state after each step (in time order), last hidden and last cell state."""
    projected = emitter.op("MatMul", [seq_x, d.input_weights_t])
    if d.input_bias:
        projected = emitter.op("Add", [projected, d.input_bias])
    hidden, cell_state = d.initial_hidden(), d.initial_cell()
    per_step: dict[int, str] = {}
    for step in (reversed(range(seq_len)) if backward else range(seq_len)):
        x_step = emitter.op("Gather", [projected, emitter.const(np.array(step, np.int64))],
                            axis=0)
        hidden, cell_state = cell.step(StepInputs(emitter, d, x_step, hidden, cell_state))
        per_step[step] = hidden
    return [per_step[t] for t in range(seq_len)], hidden, cell_state


def _outputs(emitter: Emitter, node: onnx.NodeProto,
             results: list[tuple[list[str], str, str | None]], layout: int) -> None:
    """Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden] (layout 1: batch
    first), written under the node's own output names."""
    names = list(node.output) + [""] * (3 - len(node.output))
    if names[0]:
        per_direction = [emitter.unsqueeze(emitter.concat([emitter.unsqueeze(h, 0)
                                                           for h in steps], 0), 1)
                         for steps, _, _ in results]
        emitter.finish(emitter.concat(per_direction, 1), names[0],
                       [2, 0, 1, 3] if layout else None)
    for position, pick in ((1, 1), (2, 2)):
        if names[position] and results[0][pick] is not None:
            stacked = emitter.concat([emitter.unsqueeze(r[pick], 0) for r in results], 0)
            emitter.finish(stacked, names[position], [1, 0, 2] if layout else None)

