"""What `tunesvc tune` will do: the request checked, its model's tasks, and the jobs per
share (a fixed number of trials per task, or a model-level budget handed out as results
come in), resuming from what the database holds.

Everything a user can get wrong is checked here, before the database is written to, so a
bad command leaves no partial rows behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from schedules_db import SliceKey, SliceProgress, Store, StoreError, slice_progress
from schedules_db.model_registry import tuned_for_other_models
from tunesvc.tuning.budget import BudgetAllocator, TaskProgress
from tunesvc.config import runs_dir
from tunesvc.errors import UserError
from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.models.inputs import read_inputs
from tunesvc.tuning.request import TuneRequest
from tunesvc.tuning.job_sources import BudgetedJobs, JobSource, MakeJob, QueuedJobs
from tunesvc.models.base import LoadedModel
from tunesvc.models.spec import ModelSpec
from tunesvc.targets import ShareTarget
from workers.jobs import SearchConfig, TaskSpec, TuneJob, TuneResult
from workers.shares import Share, ShareError
from workers.siblings import kin_of

BUDGET_CHUNK = 16  # trials per job under a model-level budget: two search rounds of 8
FIRST_CHUNK = 8  # a task's first job: one search round, enough to know its latency


@dataclass(frozen=True)
class Reuse:
    """At one share: tasks whose workloads other models had tuned already (their records
    count as this model's: trials go to what is new or under budget)."""

    share: Share
    tasks: int
    models: tuple[str, ...]


@dataclass(frozen=True)
class TransferSources:
    """With --transfer, at one share: of the tasks this share never tuned, how many have
    another tuned share to start from (the rest search from scratch)."""

    share: Share
    new_tasks: int
    with_source: int


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
    share_targets: dict[Share, ShareTarget] = field(default_factory=dict)  # built once
    model_name: str = ""  # as registered in the database (with `fingerprint`)
    fingerprint: str = ""
    reused: list[Reuse] = field(default_factory=list)
    transfer: list[TransferSources] = field(default_factory=list)  # with --transfer

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


def prepare(request: TuneRequest) -> TunePlan:
    """Validate the request and plan its jobs; raises UserError, writes nothing."""
    if request.trials_per_task < 1 or (request.total_trials is not None and request.total_trials < 1):
        raise UserError("--trials and --trials-per-task must be at least 1")
    request.target.validate()
    request.target.require_device()
    targets = _targets_by_share(request)
    named = request.model
    model = named if isinstance(named, LoadedModel) else named.load()
    if isinstance(named, ModelSpec) and named.inputs_file is not None:
        read_inputs(named.inputs_file, model)  # a bad file fails now, not after tuning
    tasks = extract_tasks(to_relax(model), next(iter(targets.values())).target)
    check_database(request.db_url)  # last: a bad model must not even create the file
    log_root = request.log_dir or runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
    with Store(request.db_url) as store:
        # --fresh plans as if nothing were stored; the records go only once workers stand
        # ready (`execute`), so a run that cannot start loses nothing.
        doomed = _count_all(store, tasks, targets) if request.fresh else 0
        if request.total_trials is None:
            plan = _fixed_plan(request, tasks, targets, store, log_root, doomed)
        else:
            plan = _budget_plan(request, tasks, targets, store, log_root, doomed)
        reused = [] if request.fresh else _reuse(store, tasks, targets, model.name)
        transfer = _transfer_sources(store, tasks, targets) if request.transfer else []
        return replace(plan, share_targets=targets, model_name=model.name,
                       fingerprint=model.fingerprint, reused=reused, transfer=transfer)


def _transfer_sources(store: Store, tasks: list[TaskSpec],
                      targets: dict[Share, ShareTarget]) -> list[TransferSources]:
    sources = []
    for share, at in targets.items():
        tuned = [set(store.tuned_shares(at.key.target_key, share.kind, task.shash))
                 for task in tasks]
        new = [percents for percents in tuned if share.percent not in percents]
        sources.append(TransferSources(share, len(new), sum(1 for p in new if p)))
    return sources


def _reuse(store: Store, tasks: list[TaskSpec], targets: dict[Share, ShareTarget],
           model_name: str) -> list[Reuse]:
    shashes = [task.shash for task in tasks]
    reuse = []
    for share, at in targets.items():
        found = tuned_for_other_models(store, at.key, shashes, model_name)
        if found:
            models = tuple(sorted({m for names in found.values() for m in names}))
            reuse.append(Reuse(share, len(found), models))
    return reuse


def _fixed_plan(request: TuneRequest, tasks: list[TaskSpec], targets: dict[Share, ShareTarget],
                store: Store, log_root: Path, doomed: int) -> TunePlan:
    """One job per (task, share) with `--trials-per-task` each."""
    search = SearchConfig(trials=request.trials_per_task, transfer=request.transfer,
                          warm=request.warm)
    # shares first, so each share's pool drains in turn
    jobs = [job_for(targets[share], task, index, search, log_root)
            for share in request.shares for index, task in enumerate(tasks)]
    pending, done = _split_by_progress(store, jobs, request.fresh)
    sources: list[JobSource] = [QueuedJobs(share, [j for j in pending if j.share == share])
                                for share in request.shares]
    return TunePlan(request, tasks, sources, done, log_root, doomed, jobs_planned=len(pending))


def _budget_plan(request: TuneRequest, tasks: list[TaskSpec], targets: dict[Share, ShareTarget],
                 store: Store, log_root: Path, doomed: int) -> TunePlan:
    """Per share, `--trials` for the whole model, handed out by a `BudgetAllocator` that
    starts from what the database already holds (so a rerun resumes the budget)."""
    assert request.total_trials is not None
    sources: list[JobSource] = []
    known: list[TuneResult] = []
    left: dict[Share, int] = {}
    for share in request.shares:
        stored = {t.shash: _stored(store, targets[share].key, t.shash, request.fresh)
                  for t in tasks}
        allocator = BudgetAllocator({t.shash: _task_progress(t, stored[t.shash]) for t in tasks},
                                    request.total_trials, request.trials_per_task,
                                    BUDGET_CHUNK, first_chunk=FIRST_CHUNK)
        left[share] = max(0, request.total_trials - allocator.spent())
        make_job = _job_maker(request, targets[share], tasks, log_root)
        sources.append(BudgetedJobs(share, tasks, allocator, make_job))
        known += [_already_tuned(make_job(t, 0, 0), stored[t.shash]) for t in tasks
                  if stored[t.shash].records > 0]
    return TunePlan(request, tasks, sources, known, log_root, doomed, None, left)


def _task_progress(task: TaskSpec, done: SliceProgress) -> TaskProgress:
    return TaskProgress(shash=task.shash, weight=task.weight, group=task.group, also=task.also,
                        kin=kin_of(task.name, task.mod), trials=done.records,
                        best_sec=done.best_run_sec, default_sec=done.default_run_sec,
                        exhausted=done.exhausted)


def _job_maker(request: TuneRequest, at: ShareTarget, tasks: list[TaskSpec],
               log_root: Path) -> MakeJob:
    index = {task.shash: i for i, task in enumerate(tasks)}

    def make_job(task: TaskSpec, cumulative_trials: int, number: int) -> TuneJob:
        search = SearchConfig(trials=cumulative_trials, transfer=request.transfer,
                          warm=request.warm)
        return job_for(at, task, index[task.shash], search, log_root, number)

    return make_job


def job_for(at: ShareTarget, task: TaskSpec, index: int, search: SearchConfig,
            log_root: Path, number: int | None = None) -> TuneJob:
    """The one job builder: its id and log folder name the share, the task's place in the
    model and, under a model-level budget, the job's number for that task."""
    job_id = f"{at.share.slug}-{index:03d}"
    folder = log_root / at.share.slug / f"{index:03d}-{folder_name(task.name)}"
    if number is not None:
        job_id, folder = f"{job_id}-{number}", folder / f"job{number:03d}"
    return TuneJob(job_id=job_id, task=task, share=at.share, target_json=at.json,
                   slice_key=at.key, search=search, log_dir=str(folder))


# A file name holds at most 255 bytes; a fused operator's name can be longer (every
# operator of the fused group in it): past this length it is cut and a hash of the whole
# name keeps two such folders apart.
FOLDER_NAME_CHARS = 100


def folder_name(task_name: str) -> str:
    """`task_name` as a folder name: as is, or cut with a hash of the whole name added."""
    if len(task_name) <= FOLDER_NAME_CHARS:
        return task_name
    digest = hashlib.sha256(task_name.encode()).hexdigest()[:8]
    return f"{task_name[:FOLDER_NAME_CHARS]}-{digest}"


def slices_of(tasks: list[TaskSpec],
              targets: dict[Share, ShareTarget]) -> Iterator[tuple[SliceKey, str]]:
    """(slice, workload) of every task at every planned share."""
    for at in targets.values():
        yield from ((at.key, task.shash) for task in tasks)


def _count_all(store: Store, tasks: list[TaskSpec], targets: dict[Share, ShareTarget]) -> int:
    return sum(store.count_records(key, shash) for key, shash in slices_of(tasks, targets))


def _stored(store: Store, key: SliceKey, shash: str, fresh: bool) -> SliceProgress:
    """What a slice holds, or nothing under --fresh (its records are about to go)."""
    return SliceProgress(0, 0, None, None) if fresh else slice_progress(store, key, shash)


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


def _targets_by_share(request: TuneRequest) -> dict[Share, ShareTarget]:
    try:
        return {share: request.target.at(share) for share in request.shares}
    except ShareError as exc:
        raise UserError(str(exc)) from None


def check_database(db_url: str) -> None:
    """Open the database once, so an unreachable URL fails before any work starts."""
    try:
        with Store(db_url):
            pass
    except StoreError as exc:
        raise UserError(str(exc)) from None
