"""What crosses the process boundary between coordinator and workers: frozen dataclasses.

A job is one task tuned at one share; its result carries failures as data (`error`), so a
worker never loses an exception inside Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tvm.ir import IRModule

from schedules_db.records import SliceKey
from workers.shares import Share


@dataclass(frozen=True)
class TaskSpec:
    """One operator workload to tune; `weight` counts its occurrences in the model."""

    name: str
    shash: str
    weight: int
    mod: IRModule
    # A variant (e.g. Winograd) of the task with this hash: the two compete for the same
    # operators of the model, and the faster one is compiled in. "" for a task of its own.
    competes_with: str = ""
    # A task whose operators this one computes too (a fused pair's 1x1 convolution): the
    # model does not run that one where it runs this. "" for most tasks.
    also: str = ""

    @property
    def group(self) -> str:
        """The tasks of one group are alternatives: the model runs one of them."""
        return self.competes_with or self.shash


@dataclass(frozen=True)
class SearchConfig:
    """Evolutionary search settings for one job; defaults scale with the trial budget."""

    trials: int
    trials_per_round: int = 16
    population: int | None = None
    transfer: bool = False  # a new slice starts from the nearest tuned shares' best
    # learn from other workloads' records: the cost model trains on them first, and a
    # workload never tuned on the target starts from similar workloads' best schedules
    warm: bool = False

    @property
    def population_size(self) -> int:
        # Each search round costs about 45 ms per population member on a 2-core machine
        # (3 s at 64, 23 s at TVM's default 512): beyond 128 the search, not the
        # measurements, sets the pace of a few-hundred-trial budget.
        return self.population or min(128, max(64, 4 * self.trials))


@dataclass(frozen=True)
class TuneJob:
    """One task at one share. The database is not named: a worker has one for its life."""

    job_id: str
    task: TaskSpec
    share: Share
    target_json: str
    # Where the job's records go (the target's key at the job's share), made once by the
    # planner with the target, never again in the processes the job passes through.
    slice_key: SliceKey
    search: SearchConfig
    log_dir: str
    attempt: int = 1

    @property
    def log_path(self) -> str:
        return str(Path(self.log_dir) / "job.log")


@dataclass(frozen=True)
class TuneResult:
    job_id: str
    task_name: str
    task_shash: str
    weight: int
    share: Share
    trials_measured: int
    trials_failed: int
    best_run_sec: float | None
    default_run_sec: float | None
    started_at: float  # epoch seconds, on the worker's clock
    finished_at: float
    worker: str
    log_path: str
    error: str | None = None
    measuring_pid: int | None = None  # the worker's measuring process (kept across jobs)
    slice_trials: int = 0  # records the (task, share) slice holds after this job
    worker_unusable: bool = False  # the worker could not start: give it no more jobs
    task_group: str = ""  # `TaskSpec.group`: results of one group are alternatives
    task_also: str = ""  # `TaskSpec.also`
    wrong_schedules: int = 0  # records that computed wrong outputs, marked failed (`verify`)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def wall_sec(self) -> float:
        return self.finished_at - self.started_at

    @classmethod
    def already_tuned(cls, job: TuneJob, records: int, best_run_sec: float | None,
                      default_run_sec: float | None) -> TuneResult:
        """A job whose slice an earlier run already completed (a resumed run skips it)."""
        return cls(
            job_id=job.job_id, task_name=job.task.name, task_shash=job.task.shash,
            weight=job.task.weight, share=job.share, trials_measured=0, trials_failed=0,
            best_run_sec=best_run_sec, default_run_sec=default_run_sec, started_at=0.0,
            finished_at=0.0, worker=f"database ({records} records)", log_path=job.log_path,
            task_group=job.task.group, task_also=job.task.also,
        )

    @classmethod
    def failure(cls, job: TuneJob, error: str, worker: str = "?",
                started_at: float | None = None) -> TuneResult:
        """The result of a job that measured nothing usable."""
        now = time.time()
        return cls(
            job_id=job.job_id, task_name=job.task.name, task_shash=job.task.shash,
            weight=job.task.weight, share=job.share, trials_measured=0, trials_failed=0,
            best_run_sec=None, default_run_sec=None, started_at=started_at or now,
            finished_at=now, worker=worker, log_path=job.log_path, error=error,
            task_group=job.task.group, task_also=job.task.also,
        )
