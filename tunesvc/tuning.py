"""`tunesvc tune` as a function: check every input, plan, tune, summarize.

Everything a user can get wrong is checked before the database is written to, so a bad
command leaves no partial rows behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tvm.target import Target

from schedules_db import SliceKey, Store, StoreError
from schedules_db.ms_adapter import slice_key_for
from schedules_db.store import SliceCompletion
from schedules_db.targetkey import target_json
from tunesvc.config import runs_dir
from tunesvc.coordinator import Dispatcher, ShareSummary, connect_ray, plan_jobs, summarize
from tunesvc.budget import BudgetAllocator, TaskProgress
from tunesvc.errors import UserError
from tunesvc.job_sources import BudgetedJobs, JobSource, MakeJob, QueuedJobs
from tunesvc.importer import extract_tasks, to_relax
from tunesvc.models import Shape, load_model
from tunesvc.targets import TargetSpec, require_gpu
from tunesvc.verdict import MeasuredShare, measure_shares
from workers.jobs import SearchConfig, TaskSpec, TuneJob, TuneResult
from workers.logs import output_to_file
from workers.share import Share, ShareError, machine_cores

log = logging.getLogger(__name__)
BUDGET_CHUNK = 16  # trials per job under a model-level budget: two search rounds of 8
FIRST_CHUNK = 8  # a task's first job: one search round, enough to know its latency


@dataclass(frozen=True)
class TuneRequest:
    model: str
    target: TargetSpec
    shares: tuple[Share, ...]
    trials_per_task: int  # with total_trials: a cap per task
    db_url: str
    input_shapes: dict[str, Shape]
    ray_address: str | None = None
    log_dir: Path | None = None
    fresh: bool = False
    total_trials: int | None = None  # a model-level budget per share (`--trials`)


@dataclass(frozen=True)
class TunePlan:
    request: TuneRequest
    tasks: list[TaskSpec]
    sources: list[JobSource]
    already_tuned: list[TuneResult]
    log_root: Path
    deleted_records: int = 0
    jobs_planned: int | None = None  # None: a budget decides as results come in
    trials_left: dict[Share, int] = field(default_factory=dict)

    @property
    def has_work(self) -> bool:
        if self.jobs_planned is None:
            return any(self.trials_left.values())
        return self.jobs_planned > 0


@dataclass(frozen=True)
class TuneOutcome:
    plan: TunePlan
    results: list[TuneResult]
    summaries: list[ShareSummary]
    ray_description: str


def prepare(request: TuneRequest) -> TunePlan:
    """Validate the request and plan its jobs; raises UserError, writes nothing."""
    if request.trials_per_task < 1 or (request.total_trials is not None and request.total_trials < 1):
        raise UserError("--trials and --trials-per-task must be at least 1")
    request.target.validate()
    if request.target.share_kind == "gpu":
        require_gpu()
    targets = _targets_by_share(request)
    model = load_model(request.model, request.input_shapes)
    tasks = extract_tasks(to_relax(model), next(iter(targets.values())))
    check_database(request.db_url)  # last: a bad model must not even create the file
    log_root = request.log_dir or runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
    target_jsons = {share: target_json(t) for share, t in targets.items()}
    store = Store(request.db_url)
    try:
        deleted = _forget_all(store, tasks, target_jsons) if request.fresh else 0
        if request.total_trials is None:
            return _fixed_plan(request, tasks, target_jsons, store, log_root, deleted)
        return _budget_plan(request, tasks, target_jsons, store, log_root, deleted)
    finally:
        store.close()


def _fixed_plan(request: TuneRequest, tasks: list[TaskSpec], target_jsons: dict[Share, str],
                store: Store, log_root: Path, deleted: int) -> TunePlan:
    """One job per (task, share) with `--trials-per-task` each."""
    jobs = plan_jobs(tasks, list(request.shares), target_jsons,
                     SearchConfig(trials=request.trials_per_task), request.db_url, log_root)
    pending, done = _split_by_progress(store, jobs)
    sources: list[JobSource] = [QueuedJobs(share, [j for j in pending if j.share == share])
                                for share in request.shares]
    return TunePlan(request, tasks, sources, done, log_root, deleted, jobs_planned=len(pending))


def _budget_plan(request: TuneRequest, tasks: list[TaskSpec], target_jsons: dict[Share, str],
                 store: Store, log_root: Path, deleted: int) -> TunePlan:
    """Per share, `--trials` for the whole model, handed out by a `BudgetAllocator` that
    starts from what the database already holds (so a rerun resumes the budget)."""
    assert request.total_trials is not None
    sources: list[JobSource] = []
    known: list[TuneResult] = []
    left: dict[Share, int] = {}
    for share in request.shares:
        progress = {t.shash: _progress(store, t, target_jsons[share], share) for t in tasks}
        allocator = BudgetAllocator(progress, request.total_trials, request.trials_per_task,
                                    BUDGET_CHUNK, first_chunk=FIRST_CHUNK)
        left[share] = max(0, request.total_trials - allocator.spent())
        make_job = _job_maker(request, share, target_jsons[share], tasks, log_root)
        sources.append(BudgetedJobs(share, tasks, allocator, make_job))
        known += [_known_result(make_job(t, 0, 0), progress[t.shash]) for t in tasks
                  if progress[t.shash].trials > 0]
    return TunePlan(request, tasks, sources, known, log_root, deleted, None, left)


def _progress(store: Store, task: TaskSpec, target_text: str, share: Share) -> TaskProgress:
    key = _slice_of(target_text, share)
    records = store.count_records(key, task.shash)
    completion = store.completion(key, task.shash)
    best = store.top_records(key, task.shash, limit=1)
    return TaskProgress(
        shash=task.shash, weight=task.weight, trials=records,
        best_sec=best[0].mean_run_sec if best else None,
        default_sec=completion.default_run_sec if completion else None,
        exhausted=completion is not None and records < completion.trials_budget,
    )


def _known_result(job: TuneJob, progress: TaskProgress) -> TuneResult:
    return TuneResult.already_tuned(job, progress.trials, progress.best_sec, progress.default_sec)


def _job_maker(request: TuneRequest, share: Share, target_text: str, tasks: list[TaskSpec],
               log_root: Path) -> MakeJob:
    index = {task.shash: i for i, task in enumerate(tasks)}

    def make_job(task: TaskSpec, cumulative_trials: int, number: int) -> TuneJob:
        label = f"{share.kind}{share.percent}"
        folder = log_root / label / f"{index[task.shash]:03d}-{task.name}" / f"job{number:03d}"
        return TuneJob(job_id=f"{label}-{index[task.shash]:03d}-{number}", task=task,
                       share=share, target_json=target_text,
                       search=SearchConfig(trials=cumulative_trials), db_url=request.db_url,
                       log_dir=str(folder))

    return make_job


def _forget_all(store: Store, tasks: list[TaskSpec], target_jsons: dict[Share, str]) -> int:
    return sum(store.delete_records(_slice_of(text, share), task.shash)
               for share, text in target_jsons.items() for task in tasks)


def _slice_of(target_text: str, share: Share) -> SliceKey:
    return slice_key_for(Target(json.loads(target_text)), share.kind, share.percent)


def _split_by_progress(store: Store, jobs: list[TuneJob]) -> tuple[list[TuneJob], list[TuneResult]]:
    """Jobs still to run, and results for slices already holding their whole budget."""
    pending, done = [], []
    for job in jobs:
        key = _slice_of(job.target_json, job.share)
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
    if not plan.has_work:
        return TuneOutcome(plan, plan.already_tuned, summarize(plan.already_tuned), "no workers")
    cores = machine_cores()
    plan.log_root.mkdir(parents=True, exist_ok=True)
    with output_to_file(plan.log_root / "ray.log"):
        ray_description = connect_ray(plan.request.ray_address, cores)
    if on_start:
        on_start(ray_description)
    log.info("tuning %s on %s", plan.request.model, ray_description)
    results = plan.already_tuned + Dispatcher(cores).run(plan.sources, on_result)
    return TuneOutcome(plan, results, summarize(results), ray_description)


def measure(plan: TunePlan) -> list[MeasuredShare]:
    """The tuned model run at each share, beside TVM's default and onnxruntime."""
    request = plan.request
    shape_args = [arg for name, dims in request.input_shapes.items()
                  for arg in ("--input-shape", f"{name}:{'x'.join(map(str, dims))}")]
    return measure_shares(request.model, request.target.name, list(request.shares),
                          request.db_url, shape_args)
