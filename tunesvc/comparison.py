"""How a tuned model compares, at its share, with what a user would run without tuning.

Two baselines, timed in the same process, on the same cores, right after the tuned model:
TVM with its default schedules, and onnxruntime (the engine most users already have; for
a PyTorch model, PyTorch eager) with as many intra-op threads as the share has cores. Ratios are speedups of the tuned model:
above 1 it is faster than that baseline, below 1 slower.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tunesvc.reference import onnxruntime_latency
from tunesvc.runtime import TunedModel
from tunesvc.timing import LatencyStats

# TVM's default CPU schedules are single-threaded and slow (seconds for a ResNet): a few
# runs give their median well enough.
MAX_DEFAULT_RUNS = 10


@dataclass(frozen=True)
class Comparison:
    tuned: LatencyStats
    tvm_default: LatencyStats | None
    onnxruntime: LatencyStats | None
    onnxruntime_threads: int | None  # intra-op threads the reference engine was given
    speedup_vs_default: float | None
    speedup_vs_onnxruntime: float | None
    note: str = ""
    pytorch: LatencyStats | None = None  # a PyTorch model's reference, in onnxruntime's stead
    speedup_vs_pytorch: float | None = None

    def samples(self) -> dict[str, list[float]]:
        """Every timed call (seconds) per engine measured."""
        engines = {"tuned": self.tuned, "tvm_default": self.tvm_default,
                   "onnxruntime": self.onnxruntime, "pytorch": self.pytorch}
        return {name: list(stats.samples_sec) for name, stats in engines.items() if stats}


def compare_engines(tuned: TunedModel, inputs: list[np.ndarray], tuned_latency: LatencyStats,
                    runs: int) -> Comparison:
    default = tuned.untuned().benchmark(*inputs, runs=min(runs, MAX_DEFAULT_RUNS))
    threads = tuned.share.backend.host_threads(tuned.share)
    if threads is None:
        return _comparison(tuned_latency, default, None, None,
                           "onnxruntime is compared on CPU shares only (GPU: not measured)")
    if tuned.model.proto is None:
        eager = tuned.model.for_tvm.latency(inputs, threads, runs)
        return replace(_comparison(tuned_latency, default, None, threads), pytorch=eager,
                       speedup_vs_pytorch=_speedup(eager, tuned_latency))
    reference = onnxruntime_latency(tuned.model, inputs, threads, runs)
    return _comparison(tuned_latency, default, reference, threads)


def skipped(tuned_latency: LatencyStats, note: str) -> Comparison:
    return _comparison(tuned_latency, None, None, None, note)


def _comparison(tuned: LatencyStats, default: LatencyStats | None,
                reference: LatencyStats | None, threads: int | None, note: str = "") -> Comparison:
    return Comparison(tuned, default, reference, threads, _speedup(default, tuned),
                      _speedup(reference, tuned), note)


def _speedup(baseline: LatencyStats | None, tuned: LatencyStats) -> float | None:
    if baseline is None or tuned.median_sec <= 0:
        return None
    return baseline.median_sec / tuned.median_sec
