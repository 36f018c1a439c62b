"""One time step of each ONNX recurrent layer, as plain ONNX operators.

Notation of the ONNX operator definitions: X_t W^T is precomputed for all steps (with the
input bias Wb); each step adds H_{t-1} R^T and the recurrent bias Rb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import onnx

from tunesvc.errors import UserError
from tunesvc.models.onnx.graph import Emitter

SUPPORTED_ACTIVATIONS = ("Sigmoid", "Tanh", "Relu")
# Inputs of a recurrent node, by position (LSTM has all; GRU and RNN stop at initial_h).
X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, P = range(8)


@dataclass
class DirectionInputs:
    """One direction's weights, biases, initial states and activations, as graph values."""

    emitter: Emitter
    inputs: list[str]
    index: int
    hidden: int
    batch: int
    activations: list[str]
    clip: float | None
    gates: int = 1
    layout: int = 0
    _cache: dict[str, str] = field(default_factory=dict)

    def _once(self, key: str, make) -> str:  # type: ignore[no-untyped-def]
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _pick(self, name: str, axis: int = 0) -> str:
        """This direction's slice of a per-direction input (its axis of directions)."""
        index = self.emitter.const(np.array(self.index, np.int64))
        return self.emitter.op("Gather", [name, index], axis=axis)

    @property
    def dtype(self) -> np.dtype:
        return self.emitter.dtype_of(self.inputs[W])

    @property
    def input_weights_t(self) -> str:
        return self._once("wt", lambda: self.emitter.op("Transpose", [self._pick(self.inputs[W])],
                                                         perm=[1, 0]))

    def recurrent_weights_t(self, first_gate: int = 0, gates: int | None = None) -> str:
        """R^T [hidden, gates x hidden] for gates first_gate.. (default: all)."""
        gates = self.gates - first_gate if gates is None else gates
        whole = self._once("rt", lambda: self.emitter.op(
            "Transpose", [self._pick(self.inputs[R])], perm=[1, 0]))
        if (first_gate, gates) == (0, self.gates):
            return whole
        return self._once(f"rt{first_gate}:{gates}", lambda: self.emitter.slice(
            whole, first_gate * self.hidden, (first_gate + gates) * self.hidden, 1))

    def _bias(self, half: int) -> str | None:
        if not self.inputs[B]:
            return None
        size = self.gates * self.hidden
        return self._once(f"b{half}", lambda: self.emitter.slice(
            self._pick(self.inputs[B]), half * size, (half + 1) * size, 0))

    @property
    def input_bias(self) -> str | None:
        return self._bias(0)

    def recurrent_bias(self, first_gate: int = 0, gates: int | None = None) -> str | None:
        whole = self._bias(1)
        gates = self.gates - first_gate if gates is None else gates
        if whole is None or (first_gate, gates) == (0, self.gates):
            return whole
        return self._once(f"rb{first_gate}:{gates}", lambda: self.emitter.slice(
            whole, first_gate * self.hidden, (first_gate + gates) * self.hidden, 0))

    def _state(self, position: int) -> str:
        if len(self.inputs) > position and self.inputs[position]:
            return self._pick(self.inputs[position], axis=self.layout)  # layout 1: batch first
        return self.emitter.const(np.zeros((self.batch, self.hidden), self.dtype))

    def initial_hidden(self) -> str:
        return self._state(INITIAL_H)

    def initial_cell(self) -> str | None:
        return self._state(INITIAL_C) if self.gates == 4 else None

    def peephole(self, gate: int) -> str | None:
        """LSTM peephole weights of gate 0 (i), 1 (o) or 2 (f), if the node has them."""
        if self.gates != 4 or len(self.inputs) <= P or not self.inputs[P]:
            return None
        whole = self._once("p", lambda: self._pick(self.inputs[P]))
        return self._once(f"p{gate}", lambda: self.emitter.slice(
            whole, gate * self.hidden, (gate + 1) * self.hidden, 0))

    def activate(self, which: int, x: str) -> str:
        """Activation `which` (f, g, h in the ONNX definitions) of `x`; a gate's input
        (f, g) is clipped first, as onnxruntime does."""
        if self.clip is not None and which < 2:
            x = self.emitter.clip(x, float(self.clip), self.dtype)
        return self.emitter.op(self.activations[which], [x])


@dataclass
class StepInputs:
    emitter: Emitter
    d: DirectionInputs
    x_step: str  # X_t W^T + Wb, [batch, gates x hidden]
    hidden: str
    cell: str | None


class Cell:
    gates: ClassVar[int]
    default_activations: ClassVar[tuple[str, ...]]

    def check(self, node: onnx.NodeProto, attrs: dict, source: str) -> None:
        for name in ("activation_alpha", "activation_beta"):
            if name in attrs:
                raise UserError(f"{source}: {node.op_type} node {node.name!r} sets {name}; "
                                f"parameterized activations are not supported")

    def activations(self, attrs: dict, directions: int) -> list[list[str]]:
        names = [a.decode() if isinstance(a, bytes) else a
                 for a in attrs.get("activations", self.default_activations)]
        per = len(self.default_activations)
        names = names * directions if len(names) == per else names
        unknown = sorted({n for n in names if n not in SUPPORTED_ACTIVATIONS})
        if unknown:
            raise UserError(f"recurrent layer activation {', '.join(unknown)} is not supported "
                            f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
        return [names[i * per:(i + 1) * per] for i in range(directions)]

    def step(self, s: StepInputs) -> tuple[str, str | None]:
        raise NotImplementedError


def _gate(s: StepInputs, source: str, index: int) -> str:
    return s.emitter.slice(source, index * s.d.hidden, (index + 1) * s.d.hidden, 1)


def _recurrent(s: StepInputs, first: int = 0, gates: int | None = None,
               state: str | None = None) -> str:
    """(state or H_{t-1}) R^T + Rb for the given gates."""
    e = s.emitter
    out = e.op("MatMul", [state or s.hidden, s.d.recurrent_weights_t(first, gates)])
    bias = s.d.recurrent_bias(first, gates)
    return e.op("Add", [out, bias]) if bias else out


class Lstm(Cell):
    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")

    def check(self, node: onnx.NodeProto, attrs: dict, source: str) -> None:
        super().check(node, attrs, source)
        if attrs.get("input_forget", 0):
            raise UserError(f"{source}: LSTM node {node.name!r} couples its input and forget "
                            f"gates (input_forget=1), which is not supported")

    def step(self, s: StepInputs) -> tuple[str, str | None]:
        e, d = s.emitter, s.d
        gates = e.op("Add", [s.x_step, _recurrent(s)])
        i, o, f, c = (_gate(s, gates, k) for k in range(4))
        i, f = (self._peep(s, x, d.peephole(k), s.cell) for x, k in ((i, 0), (f, 2)))
        i, f, candidate = d.activate(0, i), d.activate(0, f), d.activate(1, c)
        cell = e.op("Add", [e.op("Mul", [f, s.cell]), e.op("Mul", [i, candidate])])
        o = d.activate(0, self._peep(s, o, d.peephole(1), cell))
        return e.op("Mul", [o, d.activate(2, cell)]), cell

    @staticmethod
    def _peep(s: StepInputs, x: str, weights: str | None, cell: str | None) -> str:
        if weights is None or cell is None:
            return x
        return s.emitter.op("Add", [x, s.emitter.op("Mul", [weights, cell])])


class Gru(Cell):
    gates = 3
    default_activations = ("Sigmoid", "Tanh")

    def __init__(self) -> None:
        self.linear_before_reset = False

    def check(self, node: onnx.NodeProto, attrs: dict, source: str) -> None:
        super().check(node, attrs, source)
        self.linear_before_reset = bool(attrs.get("linear_before_reset", 0))

    def step(self, s: StepInputs) -> tuple[str, str | None]:
        e, d = s.emitter, s.d
        update_reset = _recurrent(s, 0, 2)
        z = d.activate(0, e.op("Add", [_gate(s, s.x_step, 0), _gate(s, update_reset, 0)]))
        r = d.activate(0, e.op("Add", [_gate(s, s.x_step, 1), _gate(s, update_reset, 1)]))
        if self.linear_before_reset:
            recurrent = e.op("Mul", [r, _recurrent(s, 2, 1)])
        else:
            recurrent = _recurrent(s, 2, 1, state=e.op("Mul", [r, s.hidden]))
        candidate = d.activate(1, e.op("Add", [_gate(s, s.x_step, 2), recurrent]))
        keep = e.op("Mul", [z, e.op("Sub", [s.hidden, candidate])])
        return e.op("Add", [candidate, keep]), None


class Rnn(Cell):
    gates = 1
    default_activations = ("Tanh",)

    def step(self, s: StepInputs) -> tuple[str, str | None]:
        return s.d.activate(0, s.emitter.op("Add", [s.x_step, _recurrent(s)])), None


CELLS: dict[str, type[Cell]] = {"LSTM": Lstm, "GRU": Gru, "RNN": Rnn}
