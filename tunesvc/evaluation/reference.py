"""The engine a user already has: onnxruntime on the same ONNX graph and inputs (for a
PyTorch model: PyTorch itself, `tunesvc.models.pytorch`).

A run is checked against it (outputs) and compared with it (latency at the same share:
the same cores, as many intra-op threads as the share has cores).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import onnx
import onnxruntime

from tunesvc.models.base import LoadedModel
from tunesvc.models.onnx.imported import OnnxGraph
from tunesvc.models.onnx.quantized import quantized_operators
from workers.agreement import RELATIVE_TOLERANCE, max_abs_difference, tolerance

# float32 kernels with different loop orders differ by rounding; scale by output magnitude.
# TVM may be this many times as far from the reference as the reference's own two
# implementations of the graph are from each other (an int8 graph: fused integer kernels
# against quantize-compute-dequantize in float, which round a value a step apart; an
# integer LSTM against the same LSTM in float).
GAP_FACTOR = 4.0


@dataclass(frozen=True)
class Agreement:
    max_abs_error: float
    tolerance: float
    rule: str = ""  # how the tolerance was derived

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


class Reference(Protocol):
    """An engine a user already has, on the model as they gave it."""

    name: str

    def outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """What it computes for `inputs` (one array per model input, in order)."""
        ...

    def timed_call(self, inputs: list[np.ndarray], threads: int) -> Callable[[], object]:
        """One inference with `threads` intra-op threads, inputs prepared: what is timed."""
        ...

    def second_opinion(self, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
        """The outputs of another implementation of the same graph by the same engine, to
        tell how far two correct answers lie apart (None: the engine has no other)."""
        ...


@dataclass(frozen=True)
class Onnxruntime:
    """onnxruntime's CPU provider on the ONNX graph as given."""

    model: LoadedModel
    name: str = "onnxruntime"

    def outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        session = _session(self.model, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
        return list(session.run(None, feed(self.model, inputs)))

    def timed_call(self, inputs: list[np.ndarray], threads: int) -> Callable[[], object]:
        session = cpu_session(self.model, threads)
        fed = feed(self.model, inputs)
        return lambda: session.run(None, fed)

    def second_opinion(self, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
        """The graph with no graph optimizations: no fused kernels, an int8 graph computed
        in float between its quantize and dequantize nodes, and integer operators that hold
        their rounding inside one kernel (a dynamically quantized LSTM) computed in float
        as tunesvc's rewrite of them does (`models.onnx.quantized`)."""
        graph = quantized_operators(self.model.proto)
        session = _session(self.model, onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
                           graph=graph)
        return list(session.run(None, feed(self.model, inputs)))


def reference_of(model: LoadedModel) -> Reference:
    """onnxruntime for an ONNX model; a PyTorch model's graph is its own reference
    (PyTorch eager, `tunesvc.models.pytorch.TorchGraph`)."""
    if isinstance(model.for_tvm, OnnxGraph):
        return Onnxruntime(model)
    return typing.cast(Reference, model.for_tvm)


def engine_name(model: LoadedModel) -> str:
    """What `model`'s outputs are checked against."""
    return reference_of(model).name


def reference_outputs(model: LoadedModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return reference_of(model).outputs(inputs)


def feed(model: LoadedModel, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime runs the graph as given: fixed inputs are fed their values."""
    return {**dict(zip(model.input_shapes, inputs)), **model.input_values}


def cpu_session(model: LoadedModel, threads: int) -> onnxruntime.InferenceSession:
    """onnxruntime's CPU provider with all graph optimizations and `threads` intra-op
    threads; the process's CPU affinity decides which cores they run on."""
    return _session(model, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL, threads)


def _session(model: LoadedModel, level: onnxruntime.GraphOptimizationLevel,
             threads: int | None = None,
             graph: onnx.ModelProto | None = None) -> onnxruntime.InferenceSession:
    """onnxruntime's CPU provider on `graph` (default: the model as given), at an
    optimization `level`, with `threads` intra-op threads (None: onnxruntime's default)."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = level
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession((graph or model.proto).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def reference_call(model: LoadedModel, inputs: list[np.ndarray],
                   threads: int) -> Callable[[], object]:
    """One inference of the reference engine with `threads` intra-op threads: onnxruntime
    for an ONNX model, PyTorch eager for a PyTorch one."""
    return reference_of(model).timed_call(inputs, threads)


def check_outputs(model: LoadedModel, outputs: list[np.ndarray],
                  inputs: list[np.ndarray]) -> Agreement:
    """`outputs` (TVM's, for `inputs`) against the reference engine's, within a tolerance
    derived from the reference: the larger of the float32 rule and GAP_FACTOR times the
    distance between the reference's two implementations of the graph."""
    reference = reference_of(model)
    expected = reference.outputs(inputs)
    agreement = compare(outputs, expected)
    second = reference.second_opinion(inputs)
    if second is None:
        return agreement
    gap = max_abs_difference(second, expected)
    if not GAP_FACTOR * gap > agreement.tolerance:
        return replace(agreement, rule=f"{agreement.rule}; {reference.name}'s unoptimized "
                                       f"float path is within {gap:.2e} of it")
    return replace(agreement, tolerance=GAP_FACTOR * gap,
                   rule=f"{GAP_FACTOR:g}x the {gap:.2e} between {reference.name} as is and "
                        f"its unoptimized float path (above {agreement.tolerance:.2e}, "
                        f"{agreement.rule})")


def compare(outputs: list[np.ndarray], expected: list[np.ndarray]) -> Agreement:
    """Within the float32 rule: RELATIVE_TOLERANCE x max(1, largest finite |expected|). The
    same inf or nan at the same place in both agrees; the rule then says the reference holds
    such values (made-up inputs outside what the model expects often give them)."""
    rule = f"float32: {RELATIVE_TOLERANCE:g} x max(1, largest |reference|)"
    special = sum(int(np.size(want) - np.count_nonzero(np.isfinite(want))) for want in expected)
    if special:
        rule += (f"; the reference itself holds {special} inf/nan values: are the inputs "
                 "meaningful? (--input-value, --inputs)")
    return Agreement(max_abs_difference(outputs, expected), tolerance(expected), rule)
