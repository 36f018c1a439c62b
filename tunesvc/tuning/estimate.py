"""The model's latency estimated from its operators' kernels: the one formula.

Sum over operators of (times the model calls it) x (its kernel's latency). Operators that
are alternatives for the same part of the model (a convolution's direct and Winograd
tasks share a group) count once, with the fastest of them, as the compiler takes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One task's contribution: its group, how often the model runs it, its latency."""

    group: str
    weight: int
    latency_sec: float | None


def estimated_latency(parts: Iterable[Part]) -> float | None:
    """The estimate, or None while a group has no latency yet."""
    best: dict[str, float | None] = {}
    for part in parts:
        value = None if part.latency_sec is None else part.weight * part.latency_sec
        known = best.get(part.group)
        if known is None or (value is not None and value < known):
            best[part.group] = value
    if any(value is None for value in best.values()):
        return None
    return sum(value for value in best.values() if value is not None)

