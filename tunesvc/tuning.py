"""`tunesvc tune` as a function: check every input, plan, tune, summarize.

Everything a user can get wrong is checked before the database is written to, so a bad
command leaves no partial rows behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tvm.target import Target

from schedules_db import SliceKey, Store, StoreError
from schedules_db.ms_adapter import slice_key_for
from schedules_db.store import SliceCompletion
from schedules_db.targetkey import target_json
from tunesvc.config import runs_dir
from tunesvc.coordinator import Dispatcher, ShareSummary, connect_ray, plan_jobs, summarize
from tunesvc.errors import UserError
from tunesvc.importer import extract_tasks, to_relax
from tunesvc.models import Shape, load_model
from tunesvc.targets import TargetSpec, require_gpu
from workers.jobs import SearchConfig, TaskSpec, TuneJob, TuneResult
from workers.logs import output_to_file
from workers.share import Share, ShareError, machine_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneRequest:
    model: str
    target: TargetSpec
    shares: tuple[Share, ...]
    trials_per_task: int
    db_url: str
    input_shapes: dict[str, Shape]
    ray_address: str | None = None
    log_dir: Path | None = None
    fresh: bool = False


@dataclass(frozen=True)
class TunePlan:
    request: TuneRequest
    tasks: list[TaskSpec]
    jobs: list[TuneJob]
    already_tuned: list[TuneResult]
    log_root: Path
    deleted_records: int = 0


@dataclass(frozen=True)
class TuneOutcome:
    plan: TunePlan
    results: list[TuneResult]
    summaries: list[ShareSummary]
    ray_description: str


def prepare(request: TuneRequest) -> TunePlan:
    """Validate the request and plan its jobs; raises UserError, writes nothing."""
    if request.trials_per_task < 1:
        raise UserError("--trials-per-task must be at least 1")
    request.target.validate()
    if request.target.share_kind == "gpu":
        require_gpu()
    targets = _targets_by_share(request)
    model = load_model(request.model, request.input_shapes)
    tasks = extract_tasks(to_relax(model), next(iter(targets.values())))
    check_database(request.db_url)  # last: a bad model must not even create the file
    log_root = request.log_dir or runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
    search = SearchConfig(trials=request.trials_per_task)
    jobs = plan_jobs(tasks, list(request.shares), {s: target_json(t) for s, t in targets.items()},
                     search, request.db_url, log_root)
    store = Store(request.db_url)
    deleted = sum(_forget(store, job) for job in jobs) if request.fresh else 0
    pending, done = _split_by_progress(store, jobs)
    store.close()
    return TunePlan(request, tasks, pending, done, log_root, deleted)


def _slice(job: TuneJob) -> SliceKey:
    target = Target(json.loads(job.target_json))
    return slice_key_for(target, job.share.kind, job.share.percent)


def _forget(store: Store, job: TuneJob) -> int:
    return store.delete_records(_slice(job), job.task.shash)


def _split_by_progress(store: Store, jobs: list[TuneJob]) -> tuple[list[TuneJob], list[TuneResult]]:
    """Jobs still to run, and results for slices already holding their whole budget."""
    pending, done = [], []
    for job in jobs:
        key = _slice(job)
        records = store.count_records(key, job.task.shash)
        completion = store.completion(key, job.task.shash)
        if not _is_complete(completion, records, job.search.trials):
            pending.append(job)
            continue
        best = store.top_records(key, job.task.shash, limit=1)
        done.append(TuneResult.already_tuned(job, records, best[0].mean_run_sec if best else None,
                                             completion.default_run_sec if completion else None))
    return pending, done


def _is_complete(completion: SliceCompletion | None, records: int, trials: int) -> bool:
    """Finished with at least this budget, or its search space ran out before its budget
    (another run would only measure the same candidates again)."""
    if completion is None:
        return False
    return completion.trials_budget >= trials or records < completion.trials_budget


def _targets_by_share(request: TuneRequest) -> dict[Share, object]:
    try:
        return {share: request.target.for_share(share) for share in request.shares}
    except ShareError as exc:
        raise UserError(str(exc)) from None


def check_database(db_url: str) -> None:
    """Open the database once, so an unreachable URL fails before any work starts."""
    try:
        Store(db_url).close()
    except StoreError as exc:
        raise UserError(str(exc)) from None


def execute(plan: TunePlan, on_result: Callable[[TuneResult], None],
            on_start: Callable[[str], None] | None = None) -> TuneOutcome:
    """Run every job of the plan on Ray; returns when all have a result."""
    if not plan.jobs:
        return TuneOutcome(plan, plan.already_tuned, summarize(plan.already_tuned), "no workers")
    cores = machine_cores()
    plan.log_root.mkdir(parents=True, exist_ok=True)
    with output_to_file(plan.log_root / "ray.log"):
        ray_description = connect_ray(plan.request.ray_address, cores)
    if on_start:
        on_start(ray_description)
    log.info("tuning %s: %d jobs on %s", plan.request.model, len(plan.jobs), ray_description)
    results = plan.already_tuned + Dispatcher(cores).run(plan.jobs, on_result)
    return TuneOutcome(plan, results, summarize(results), ray_description)
