"""After tuning: run the model at each share as `tunesvc run` would, and compare.

Each share is measured in a fresh process (TVM reads its thread count once per process,
and `run` holds its process to the share's cores), one share at a time, so the tuned
model, TVM's default schedules and onnxruntime are timed on the same cores in one run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from tunesvc.evaluation.run import RunReport
from tunesvc.models.spec import ModelSpec
from tunesvc.runtime.timing import LatencyStats
from workers.shares import Share

VERDICT_RUNS = 30
RUN_TIMEOUT_SEC = 1800


@dataclass(frozen=True)
class MeasuredShare:
    share: Share
    tuned_median_sec: float | None = None
    default_median_sec: float | None = None
    onnxruntime_median_sec: float | None = None
    speedup_vs_onnxruntime: float | None = None
    speedup_vs_default: float | None = None
    error: str | None = None


def measure_shares(model: ModelSpec, target: str, shares: list[Share],
                   db_url: str) -> list[MeasuredShare]:
    return [_measure(model, target, share, db_url) for share in shares]


def _measure(model: ModelSpec, target: str, share: Share, db_url: str) -> MeasuredShare:
    command = [sys.executable, "-m", "tunesvc", "run", *model.argv(), "--target", target,
               "--share", str(share.percent), "--db", db_url, "--runs", str(VERDICT_RUNS),
               "--json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SEC)
    except subprocess.TimeoutExpired:
        return MeasuredShare(share, error=f"tunesvc run took over {RUN_TIMEOUT_SEC} s")
    if done.returncode != 0 and not done.stdout.strip().startswith("{"):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return MeasuredShare(share, error=last)
    return _from_report(share, RunReport.from_json(done.stdout))


def _from_report(share: Share, report: RunReport) -> MeasuredShare:
    comparison = report.comparison
    return MeasuredShare(
        share=share,
        tuned_median_sec=report.median_sec,
        default_median_sec=_median(comparison.tvm_default),
        onnxruntime_median_sec=_median(comparison.onnxruntime),
        speedup_vs_onnxruntime=comparison.speedup_vs_onnxruntime,
        speedup_vs_default=comparison.speedup_vs_default,
        error=None if report.agreement_ok else f"output does not match {report.reference_engine}",
    )


def _median(stats: LatencyStats | None) -> float | None:
    return None if stats is None else stats.median_sec
