"""How a tuned model compares, at its share, with what a user would run without tuning.

Two baselines, in the same process, on the same cores: TVM with its default schedules, and
onnxruntime (the engine most users already have; for a PyTorch model, PyTorch eager) with
as many intra-op threads as the share has cores. All three are timed in interleaved
rounds (`tunesvc.runtime.timing.time_interleaved`) and compared by the median of the per-round
ratios, so a slow minute of the machine cannot flatter one of them. TVM's default
schedules are slow (seconds per call for a ResNet): one call per round, for a few
seconds at most. Speedups are of the tuned model: above 1 it is faster than that
baseline, below 1 slower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tunesvc.evaluation.reference import engine_name, reference_call
from tunesvc.runtime.tuned import TunedModel
from tunesvc.runtime.timing import LatencyStats, RoundRatios, time_interleaved

ROUNDS = 10
DEFAULT_BUDGET_SEC = 5.0  # TVM's default schedules: at most this long in all
TUNED, DEFAULT = "tuned", "tvm_default"


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
    rounds: int = 0  # interleaved rounds the engines were timed in (0: not interleaved)
    # tuned latency / baseline latency, per round: median and quartiles
    ratio_vs_default: RoundRatios | None = None
    ratio_vs_reference: RoundRatios | None = None

    def samples(self) -> dict[str, list[float]]:
        """Every timed call (seconds) per engine measured."""
        engines = {"tuned": self.tuned, "tvm_default": self.tvm_default,
                   "onnxruntime": self.onnxruntime, "pytorch": self.pytorch}
        return {name: list(stats.samples_sec) for name, stats in engines.items() if stats}


def compare_engines(tuned: TunedModel, inputs: list[np.ndarray], runs: int) -> Comparison:
    """The tuned model, TVM's default schedules and the reference engine, interleaved."""
    engines: dict[str, Callable[[], object]] = {
        TUNED: tuned.timed_call(*inputs), DEFAULT: tuned.untuned().timed_call(*inputs)}
    threads = tuned.share.backend.host_threads(tuned.share)
    reference = engine_name(tuned.model)
    if threads is not None:
        engines[reference] = reference_call(tuned.model, inputs, threads)
    times = time_interleaved(engines, runs, ROUNDS, {DEFAULT: DEFAULT_BUDGET_SEC})
    stats = {name: LatencyStats.of([s for round_ in rounds for s in round_])
             for name, rounds in times.items()}
    to_default = RoundRatios.of(times[TUNED], times[DEFAULT])
    to_reference = RoundRatios.of(times[TUNED], times[reference]) if reference in times else None
    note = "" if threads is not None else \
        "onnxruntime is compared on CPU shares only (GPU: not measured)"
    return Comparison(
        tuned=stats[TUNED], tvm_default=stats[DEFAULT],
        onnxruntime=stats.get("onnxruntime"), onnxruntime_threads=threads,
        speedup_vs_default=_speedup(to_default),
        speedup_vs_onnxruntime=_speedup(to_reference) if reference == "onnxruntime" else None,
        note=note, pytorch=stats.get("PyTorch"),
        speedup_vs_pytorch=_speedup(to_reference) if reference == "PyTorch" else None,
        rounds=ROUNDS, ratio_vs_default=to_default, ratio_vs_reference=to_reference)


def skipped(tuned_latency: LatencyStats, note: str) -> Comparison:
    return Comparison(tuned_latency, None, None, None, None, None, note)


def _speedup(ratio: RoundRatios | None) -> float | None:
    return None if ratio is None or ratio.median <= 0 else 1 / ratio.median
