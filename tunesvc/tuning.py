"""`tunesvc tune` as a function: check every input, plan, tune, summarize.

Everything a user can get wrong is checked before the database is written to, so a bad
command leaves no partial rows behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from schedules_db import Store, StoreError
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


@dataclass(frozen=True)
class TunePlan:
    request: TuneRequest
    tasks: list[TaskSpec]
    jobs: list[TuneJob]
    log_root: Path


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
    return TunePlan(request, tasks, jobs, log_root)


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
    cores = machine_cores()
    plan.log_root.mkdir(parents=True, exist_ok=True)
    with output_to_file(plan.log_root / "ray.log"):
        ray_description = connect_ray(plan.request.ray_address, cores)
    if on_start:
        on_start(ray_description)
    log.info("tuning %s: %d jobs on %s", plan.request.model, len(plan.jobs), ray_description)
    results = Dispatcher(cores).run(plan.jobs, on_result)
    return TuneOutcome(plan, results, summarize(results), ray_description)
