"""`tunesvc tune` as a function: check every input, plan, tune, summarize.

Everything a user can get wrong is checked before the database is written to, so a bad
command leaves no partial rows behind.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import ray
from tvm.target import Target

from schedules_db import SliceKey, SliceProgress, Store, StoreError, slice_progress
from schedules_db.ms_adapter import slice_key_for
from schedules_db.targetkey import target_json
from tunesvc.config import runs_dir
from tunesvc.coordinator import Dispatcher, ShareSummary, connect_ray, plan_jobs, summarize
from tunesvc.budget import BudgetAllocator, TaskProgress
from tunesvc.errors import UserError
from tunesvc.placement import isa_placement
from tunesvc.job_sources import BudgetedJobs, JobSource, MakeJob, QueuedJobs
from tunesvc.importer import extract_tasks, to_relax
from tunesvc.inputs import read_inputs
from tunesvc.registration import register_tasks
from tunesvc.models import Shape, load_model
from tunesvc.targets import TargetSpec
from tunesvc.verdict import MeasuredShare, measure_shares, shape_args
from workers.jobs import SearchConfig, TaskSpec, TuneJob, TuneResult
from workers.logs import output_to_file
from workers.shares import Share, ShareError, machine_cores

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
    inputs_file: Path | None = None  # arrays the model is measured on once tuned


@dataclass(frozen=True)
class TunePlan:
    request: TuneRequest
    tasks: list[TaskSpec]
    sources: list[JobSource]
    already_tuned: list[TuneResult]
    log_root: Path
    records_to_forget: int = 0  # --fresh: deleted once workers are ready
    jobs_planned: int | None = None  # None: a budget decides as results come in
    trials_left: dict[Share, int] = field(default_factory=dict)
    target_jsons: dict[Share, str] = field(default_factory=dict)  # each share's TVM target
    model_name: str = ""  # as registered in the database (with `fingerprint`)
    fingerprint: str = ""

    @property
    def planned_trials(self) -> dict[Share, int | None]:
        """Trials each share is to measure in this run (at most)."""
        if self.jobs_planned is None:
            return dict(self.trials_left)
        return {source.share: sum(job.search.trials for job in getattr(source, "waiting", []))
                for source in self.sources}

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
    request.target.require_device()
    targets = _targets_by_share(request)
    model = load_model(request.model, request.input_shapes)
    if request.inputs_file is not None:
        read_inputs(request.inputs_file, model)  # a bad file fails now, not after tuning
    tasks = extract_tasks(to_relax(model), next(iter(targets.values())))
    check_database(request.db_url)  # last: a bad model must not even create the file
    log_root = request.log_dir or runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
    target_jsons = {share: target_json(t) for share, t in targets.items()}
    store = Store(request.db_url)
    try:
        # --fresh plans as if nothing were stored; the records go only once workers stand
        # ready (`execute`), so a run that cannot start loses nothing.
        doomed = _count_all(store, tasks, target_jsons) if request.fresh else 0
        if request.total_trials is None:
            plan = _fixed_plan(request, tasks, target_jsons, store, log_root, doomed)
        else:
            plan = _budget_plan(request, tasks, target_jsons, store, log_root, doomed)
        return replace(plan, target_jsons=target_jsons, model_name=model.name,
                       fingerprint=model.fingerprint)
    finally:
        store.close()


def _fixed_plan(request: TuneRequest, tasks: list[TaskSpec], target_jsons: dict[Share, str],
                store: Store, log_root: Path, doomed: int) -> TunePlan:
    """One job per (task, share) with `--trials-per-task` each."""
    jobs = plan_jobs(tasks, list(request.shares), target_jsons,
                     SearchConfig(trials=request.trials_per_task), log_root)
    pending, done = _split_by_progress(store, jobs, request.fresh)
    sources: list[JobSource] = [QueuedJobs(share, [j for j in pending if j.share == share])
                                for share in request.shares]
    return TunePlan(request, tasks, sources, done, log_root, doomed, jobs_planned=len(pending))


def _budget_plan(request: TuneRequest, tasks: list[TaskSpec], target_jsons: dict[Share, str],
                 store: Store, log_root: Path, doomed: int) -> TunePlan:
    """Per share, `--trials` for the whole model, handed out by a `BudgetAllocator` that
    starts from what the database already holds (so a rerun resumes the budget)."""
    assert request.total_trials is not None
    sources: list[JobSource] = []
    known: list[TuneResult] = []
    left: dict[Share, int] = {}
    for share in request.shares:
        key = _slice_of(target_jsons[share], share)
        stored = {t.shash: _stored(store, key, t.shash, request.fresh) for t in tasks}
        allocator = BudgetAllocator({t.shash: _task_progress(t, stored[t.shash]) for t in tasks},
                                    request.total_trials, request.trials_per_task,
                                    BUDGET_CHUNK, first_chunk=FIRST_CHUNK)
        left[share] = max(0, request.total_trials - allocator.spent())
        make_job = _job_maker(request, share, target_jsons[share], tasks, log_root)
        sources.append(BudgetedJobs(share, tasks, allocator, make_job))
        known += [_already_tuned(make_job(t, 0, 0), stored[t.shash]) for t in tasks
                  if stored[t.shash].records > 0]
    return TunePlan(request, tasks, sources, known, log_root, doomed, None, left)


def _task_progress(task: TaskSpec, done: SliceProgress) -> TaskProgress:
    return TaskProgress(shash=task.shash, weight=task.weight, trials=done.records,
                        best_sec=done.best_run_sec, default_sec=done.default_run_sec,
                        exhausted=done.exhausted)


def _job_maker(request: TuneRequest, share: Share, target_text: str, tasks: list[TaskSpec],
               log_root: Path) -> MakeJob:
    index = {task.shash: i for i, task in enumerate(tasks)}

    def make_job(task: TaskSpec, cumulative_trials: int, number: int) -> TuneJob:
        label = f"{share.kind}{share.percent}"
        folder = log_root / label / f"{index[task.shash]:03d}-{task.name}" / f"job{number:03d}"
        return TuneJob(job_id=f"{label}-{index[task.shash]:03d}-{number}", task=task,
                       share=share, target_json=target_text,
                       search=SearchConfig(trials=cumulative_trials), log_dir=str(folder))

    return make_job


def _slices(tasks: list[TaskSpec], target_jsons: dict[Share, str]) -> Iterator[tuple[SliceKey, str]]:
    """(slice, workload) of every task at every planned share."""
    for share, text in target_jsons.items():
        key = _slice_of(text, share)
        yield from ((key, task.shash) for task in tasks)


def _count_all(store: Store, tasks: list[TaskSpec], target_jsons: dict[Share, str]) -> int:
    return sum(store.count_records(key, shash) for key, shash in _slices(tasks, target_jsons))


def _stored(store: Store, key: SliceKey, shash: str, fresh: bool) -> SliceProgress:
    """What a slice holds, or nothing under --fresh (its records are about to go)."""
    return SliceProgress(0, 0, None, None) if fresh else slice_progress(store, key, shash)


def _slice_of(target_text: str, share: Share) -> SliceKey:
    return slice_key_for(Target(json.loads(target_text)), share.kind, share.percent)


def _split_by_progress(store: Store, jobs: list[TuneJob],
                       fresh: bool) -> tuple[list[TuneJob], list[TuneResult]]:
    """Jobs still to run, and results for slices already holding their whole budget."""
    pending, done = [], []
    for job in jobs:
        progress = _stored(store, job.slice_key, job.task.shash, fresh)
        if progress.complete_for(job.search.trials):
            done.append(_already_tuned(job, progress))
        else:
            pending.append(job)
    return pending, done


def _already_tuned(job: TuneJob, progress: SliceProgress) -> TuneResult:
    return TuneResult.already_tuned(job, progress.records, progress.best_run_sec,
                                    progress.default_run_sec)


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
            say: Callable[[str], None] | None = None) -> TuneOutcome:
    """Run every job of the plan on Ray; returns when all have a result. `say` gets what
    a user should see on the way (where workers run, what --fresh deleted)."""
    register_tasks(plan.request.db_url, plan.model_name, plan.fingerprint, plan.tasks)
    if not plan.has_work:
        return TuneOutcome(plan, plan.already_tuned, summarize(plan.already_tuned), "no workers")
    plan.log_root.mkdir(parents=True, exist_ok=True)
    with output_to_file(plan.log_root / "ray.log"):
        ray_description = connect_ray(plan.request.ray_address, machine_cores())
    if ray_description.startswith("local"):
        _check_not_busy(plan.request.shares)
    if say:
        say(f"Workers on {ray_description}")
    log.info("tuning %s on %s", plan.request.model, ray_description)
    any_target = next(iter(plan.target_jsons.values()))
    dispatcher = Dispatcher(plan.request.db_url,
                            isa_placement(any_target, ray.cluster_resources()))
    results = dispatcher.run(plan.sources, on_result, when_ready=lambda: _forget(plan, say))
    return TuneOutcome(plan, plan.already_tuned + results, summarize(plan.already_tuned + results),
                       ray_description)


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C stops the workers and says that nothing measured is lost (exit status 130)."""
    try:
        yield
    except KeyboardInterrupt:
        ray.shutdown()
        print("\nInterrupted: workers stopped; every record measured so far is kept in the "
              "database. Run the same command again to resume.", file=sys.stderr)
        raise SystemExit(130) from None


def _check_not_busy(shares: tuple[Share, ...]) -> None:
    """On this machine, fail at once if another run holds what every share needs."""
    problems = [share.backend.busy_here(share) for share in shares]
    if all(problems):
        raise UserError(f"cannot start: {problems[0]}")


def _forget(plan: TunePlan, say: Callable[[str], None] | None) -> None:
    """--fresh, once workers stand ready: delete the model's records at the planned shares."""
    if not plan.request.fresh:
        return
    store = Store(plan.request.db_url)
    try:
        deleted = sum(store.delete_records(key, shash)
                      for key, shash in _slices(plan.tasks, plan.target_jsons))
    finally:
        store.close()
    if say:
        say(f"--fresh: deleted {deleted} earlier records of this model")


def measure(plan: TunePlan) -> list[MeasuredShare]:
    """The tuned model run at each share, beside TVM's default and onnxruntime."""
    request = plan.request
    args = shape_args(request.input_shapes)
    if request.inputs_file is not None:
        args += ["--inputs", str(request.inputs_file.resolve())]
    return measure_shares(request.model, request.target.name, list(request.shares),
                          request.db_url, args)
