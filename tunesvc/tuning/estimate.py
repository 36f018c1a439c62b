"""The model's latency estimated from its operators' kernels: the one formula.

Sum over operators of (times the model calls it) x (its kernel's latency). Operators that
are alternatives for the same part of the model (a convolution's direct and Winograd
tasks share a group) count once, with the fastest of them, as the compiler takes it. A
task that computes another task's operators too (a fused pair: its depthwise
convolution's group, and the 1x1 convolution before it, `also`) stands in its group for
its latency less that other task's, since the model then skips that one: with it
chosen, the sum counts the fused kernel once and the 1x1 kernel not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotation only: this module stays free of TVM
    from workers.jobs import TuneResult


@dataclass(frozen=True)
class Part:
    """One task's contribution: its group, how often the model runs it, its latency;
    `shash` and `also` where a task computes another's operators too (see above)."""

    group: str
    weight: int
    latency_sec: float | None
    shash: str = ""
    also: str = ""

    @classmethod
    def of_result(cls, result: TuneResult, weight: int, latency_sec: float | None) -> Part:
        """A tuning job's task as a part: `weight` calls of `latency_sec` each."""
        return cls(result.task_group or result.task_shash, weight, latency_sec,
                   result.task_shash, result.task_also)


def net_latencies(parts: Iterable[Part]) -> list[tuple[Part, float | None]]:
    """Each part with its latency as its group compares it: its own, less its `also`
    task's (None while either is unknown)."""
    parts = list(parts)
    own = {part.shash: part.latency_sec for part in parts if part.shash}
    net = []
    for part in parts:
        value = part.latency_sec
        if part.also and value is not None:
            other = own.get(part.also)
            value = None if other is None else value - other
        net.append((part, value))
    return net


def estimated_latency(parts: Iterable[Part]) -> float | None:
    """The estimate, or None while a group has no latency yet."""
    best: dict[str, float | None] = {}
    for part, latency in net_latencies(parts):
        value = None if latency is None else part.weight * latency
        known = best.get(part.group)
        if known is None or (value is not None and value < known):
            best[part.group] = value
    if any(value is None for value in best.values()):
        return None
    return sum(value for value in best.values() if value is not None)
