"""Values the schedule store hands in and out: frozen dataclasses, never ORM rows.

Nothing here touches a database; `schedules_db.store` turns rows into these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

FAILED_RUN_SEC = 1e9  # MetaSchedule records a failed build/run as 1e10 seconds
FAILED_RUN_SECS = (1e10,)  # what MetaSchedule records for a candidate that failed


@dataclass(frozen=True)
class SliceKey:
    """One slice of the store: a target (share-independent key) at a share."""

    target_key: str
    target_kind: str
    share_kind: str
    share_percent: int


@dataclass(frozen=True)
class NewRecord:
    """A measured candidate, as MetaSchedule hands it over, in JSON text form."""

    workload_shash: str
    target_json: str
    trace_json: str
    run_secs: tuple[float, ...]
    args_info_json: str
    worker: str


@dataclass(frozen=True)
class StoredRecord:
    id: int
    workload_shash: str
    target_json: str
    share_percent: int
    trace_json: str
    run_secs: tuple[float, ...]
    args_info_json: str
    worker: str
    created_at: datetime

    @property
    def mean_run_sec(self) -> float | None:
        return mean_run_sec(self.run_secs)


@dataclass(frozen=True)
class SliceSummary:
    """What `tunesvc db records` shows: one (workload, target, share) slice."""

    workload_shash: str
    target_key: str
    share_kind: str
    share_percent: int
    best_run_sec: float | None
    records: int
    last_tuned: datetime


@dataclass(frozen=True)
class SliceCompletion:
    """A slice a tuning job finished: its budget and TVM's default-schedule latency there."""

    trials_budget: int
    default_run_sec: float | None
    completed_at: datetime


@dataclass(frozen=True)
class StoreStats:
    """What `tunesvc db stats` shows."""

    workloads: int
    targets: int
    shares: tuple[str, ...]
    records: int
    failed_records: int
    first_tuned: datetime | None
    last_tuned: datetime | None


def mean_run_sec(run_secs: tuple[float, ...]) -> float | None:
    """Mean measured time, or None for a failed candidate (no times, or MetaSchedule's 1e10)."""
    if not run_secs or any(not math.isfinite(s) or s >= FAILED_RUN_SEC for s in run_secs):
        return None
    return sum(run_secs) / len(run_secs)


@dataclass(frozen=True)
class SliceProgress:
    """How far one workload is tuned in one slice: what `tune` plans from and a worker
    resumes from (`schedules_db.progress.slice_progress` reads it in one query)."""

    records: int
    successful: int
    best_run_sec: float | None
    completion: SliceCompletion | None

    @property
    def failed(self) -> int:
        return self.records - self.successful

    @property
    def default_run_sec(self) -> float | None:
        return self.completion.default_run_sec if self.completion else None

    @property
    def exhausted(self) -> bool:
        """A job finished the slice with fewer records than it asked for: its search space
        ran out, and another run would only measure the same candidates again."""
        return self.completion is not None and self.records < self.completion.trials_budget

    def complete_for(self, trials: int) -> bool:
        """Finished with at least `trials` as its budget, or exhausted."""
        return self.completion is not None and (
            self.completion.trials_budget >= trials or self.exhausted)
