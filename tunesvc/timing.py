"""Latency statistics measured the same way for every engine a run compares.

Each engine is timed as a caller sees it: one Python call per inference, inputs already
prepared, after warm-up calls, with `time.perf_counter` around the call. TVM and
onnxruntime go through the same function, so their ratio compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WARMUP_CALLS = 3


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
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return LatencyStats.of(seconds)
