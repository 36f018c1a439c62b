"""The reference a run is checked against: onnxruntime on the same ONNX graph and inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime

from tunesvc.models import LoadedModel

# float32 kernels with different loop orders differ by rounding; scale by output magnitude.
RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Agreement:
    max_abs_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


def sample_inputs(model: LoadedModel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in model.input_shapes.values()]


def reference_outputs(model: LoadedModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(model.proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return list(session.run(None, dict(zip(model.input_shapes, inputs))))


def compare(outputs: list[np.ndarray], expected: list[np.ndarray]) -> Agreement:
    worst, tolerance = 0.0, 0.0
    for got, want in zip(outputs, expected, strict=True):
        worst = max(worst, float(np.max(np.abs(got - want))))
        tolerance = max(tolerance, RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(want)))))
    return Agreement(worst, tolerance)
