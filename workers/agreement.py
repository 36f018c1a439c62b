"""How far two sets of outputs are apart, and how far they may be: one rule for a model
against its reference engine (`tunesvc.evaluation.reference`) and for a tuned kernel against
TVM's default schedule (`workers.verify`)."""

from __future__ import annotations

import numpy as np

RELATIVE_TOLERANCE = 1e-3


def tolerance(expected: list[np.ndarray]) -> float:
    """RELATIVE_TOLERANCE x max(1, largest finite |expected|)."""
    return max((RELATIVE_TOLERANCE * max(1.0, _largest_finite(want)) for want in expected),
               default=0.0)


def _largest_finite(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(np.max(finite)) if finite.size else 0.0


def max_abs_difference(outputs: list[np.ndarray], expected: list[np.ndarray]) -> float:
    """Largest |output - expected| over every pair of arrays."""
    return max((_largest_difference(got, want)
                for got, want in zip(outputs, expected, strict=True) if want.size), default=0.0)


def _largest_difference(got: np.ndarray, want: np.ndarray) -> float:
    """Largest |got - want|, where the same inf or nan in both counts as no difference (a
    different special value, or one against a number, is inf)."""
    got, want = np.broadcast_arrays(got.astype(np.float64), want.astype(np.float64))
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):  # inf - inf: a special value, decided by `same`
        difference = np.where(same, 0.0, np.abs(got - want))
    return float(np.max(np.where(np.isnan(difference), np.inf, difference)))
