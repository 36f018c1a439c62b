"""Latency statistics measured the same way for every engine a run compares.

Each engine is timed as a caller sees it: one Python call per inference, inputs already
prepared, after warm-up calls, with `time.perf_counter` around the call. TVM and
onnxruntime go through the same function, so their ratio compares like with like.

Engines compared with each other are timed in interleaved rounds (a few calls of each in
turn, A B C A B C ...), and their ratio is the median of the per-round ratios: a slow
minute of the machine hits every engine alike instead of flattering one of them. Each
engine's turn starts after a short untimed pause: an engine's idle threads go on spinning
for a while after its last call (onnxruntime's for about 30-40 ms, seen on MobileNetV2 at
2 threads), and the next engine's first call would pay for it (1.9 ms became 33 ms).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

WARMUP_CALLS = 3
TIMED_BUDGET_SEC = 60.0  # a model's own timed calls: about this long at most
# Untimed pause before each engine's turn in interleaved rounds, so the engine before it
# has gone idle: onnxruntime's threads still slowed the next call after 20 ms, not after 50.
SETTLE_SEC = 0.1


@dataclass(frozen=True)
class LatencyStats:
    runs: int
    median_sec: float
    p90_sec: float
    p99_sec: float
    mean_sec: float
    min_sec: float
    max_sec: float
    samples_sec: tuple[float, ...] = ()  # every timed call, in order

    @classmethod
    def of(cls, seconds: list[float]) -> LatencyStats:
        values = np.array(seconds, dtype=float)
        return cls(
            runs=len(seconds), median_sec=float(np.median(values)),
            p90_sec=float(np.percentile(values, 90)), p99_sec=float(np.percentile(values, 99)),
            mean_sec=float(values.mean()), min_sec=float(values.min()),
            max_sec=float(values.max()), samples_sec=tuple(float(s) for s in seconds),
        )


def time_calls(call: Callable[[], object], runs: int, warmup: int = WARMUP_CALLS) -> LatencyStats:
    """Run `call` `warmup` times untimed, then `runs` times timed one by one."""
    for _ in range(warmup):
        call()
    return LatencyStats.of(_timed(call, runs))


def runs_within(call: Callable[[], object], runs: int, at_least: int,
                budget_sec: float = TIMED_BUDGET_SEC) -> int:
    """`runs`, or fewer (never under `at_least`) when that many calls would take longer
    than `budget_sec`, as one call, timed here, tells (an untuned detector can take
    seconds a call)."""
    started = time.perf_counter()
    call()
    one_sec = max(time.perf_counter() - started, 1e-9)
    return max(at_least, min(runs, int(budget_sec / one_sec)))


@dataclass(frozen=True)
class RoundRatios:
    """Per-round latency ratios of two engines (A's median / B's median in each round):
    their median and quartiles."""

    median: float
    low: float  # first quartile
    high: float  # third quartile
    rounds: int

    @classmethod
    def of(cls, a_rounds: list[list[float]], b_rounds: list[list[float]]) -> RoundRatios | None:
        ratios = [float(np.median(a)) / float(np.median(b))
                  for a, b in zip(a_rounds, b_rounds) if a and b and float(np.median(b)) > 0]
        if not ratios:
            return None
        low, median, high = np.percentile(ratios, [25, 50, 75])
        return cls(float(median), float(low), float(high), len(ratios))


def time_interleaved(engines: Mapping[str, Callable[[], object]], runs: int, rounds: int,
                     budget_sec: Mapping[str, float] | None = None,
                     settle_sec: float = SETTLE_SEC) -> dict[str, list[list[float]]]:
    """Time every engine in `rounds` interleaved rounds of about runs/rounds calls each
    (after warm-up calls), each turn after an untimed pause of `settle_sec`. An engine
    with a time budget gets one call per round, and no more rounds once its calls have
    taken `budget_sec` (a slow baseline stays bounded). Returns, per engine, the seconds
    of each call, round by round."""
    per_round = max(1, math.ceil(runs / rounds))
    budgets = budget_sec or {}
    for name, call in engines.items():
        for _ in range(1 if name in budgets else WARMUP_CALLS):
            call()
    times: dict[str, list[list[float]]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, call in engines.items():
            spent = sum(map(sum, times[name]))
            if name in budgets and times[name] and spent >= budgets[name]:
                continue
            time.sleep(settle_sec)
            times[name].append(_timed(call, 1 if name in budgets else per_round))
    return times


def _timed(call: Callable[[], object], calls: int) -> list[float]:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds
