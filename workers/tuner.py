"""Tune one task at one share: prove the share, search, record through the store.

Runs inside a process already pinned to the share (see `workers.actor`). MetaSchedule reads
and writes through a `SliceDatabase`, so each measured candidate is committed to the store,
tagged with this share, as soon as it is measured.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.relax_integration import get_loggers_from_work_dir
from tvm.target import Target

from schedules_db.ms_adapter import SliceDatabase, to_measure_candidate
from schedules_db.progress import SliceProgress, slice_progress
from schedules_db.records import StoredRecord
from workers.cpu_isa import host_mismatch
from workers.fused_rules import register as register_fused_rules
from workers.intrinsics import load_tensor_intrinsics
from workers.jobs import TuneJob, TuneResult
from workers.logs import output_to_file
from workers.measure import default_schedule, measure_module
from workers.search import SkipMeasuredSearch
from workers.siblings import seed_from_siblings
from workers.similar import seed_from_similar
from workers.transfer import seed_from_nearest_shares
from workers.verify import verify_best
from workers.warm import WorkerTools
from workers.warm_model import warm_from_neighbours


class ShareNotProven(RuntimeError):
    """The measuring process does not demonstrably run at the job's share."""


def run_job(job: TuneJob, cores: tuple[int, ...], worker: str, tools: WorkerTools) -> TuneResult:
    """Tune `job` with the worker's warm `tools` (builder, runner, cost model, database);
    any failure comes back as `TuneResult.error`, never as an exception."""
    log_path = Path(job.log_path)
    started = time.time()
    try:
        with output_to_file(log_path):
            return _tune(job, cores, worker, tools, started)
    except Exception as exc:  # the coordinator reports it; the log holds the traceback
        with open(log_path, "a") as log:
            log.write(traceback.format_exc())
        return TuneResult.failure(job, f"{type(exc).__name__}: {exc}", worker, started)


def refuse_job(job: TuneJob, error: str, worker: str) -> TuneResult:
    """The result of a job given to a worker that could not start: the cause goes to the
    job's log and the result, and the result says the worker is unusable."""
    log_path = Path(job.log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(error + "\n")
    return replace(TuneResult.failure(job, error, worker), worker_unusable=True)


def _tune(job: TuneJob, cores: tuple[int, ...], worker: str, tools: WorkerTools,
          started: float) -> TuneResult:
    target = Target(json.loads(job.target_json))
    _prove_once(job, tools, cores)
    load_tensor_intrinsics(target.kind.name)
    register_fused_rules()
    store, key = tools.store, job.slice_key
    before = slice_progress(store, key, job.task.shash)
    # The trial budget is per slice in the database: a resumed or retried job measures
    # only what is missing, and the cost model first learns what was measured before.
    remaining = job.search.trials - before.records
    database = SliceDatabase(store, key, worker=worker,
                             before_commit=job.share.backend.commit_guard(job.share))
    workload = database.commit_workload(job.task.mod)
    if remaining > 0 and before.records == 0:
        remaining -= _seed(job, target, tools, database, workload, remaining)
    if remaining > 0:
        best = slice_progress(store, key, job.task.shash).best_run_sec
        remaining -= seed_from_siblings(job, target, database, workload, tools, best, remaining)
    if remaining > 0:
        _search(job, target, tools, database, workload, remaining)
    wrong = verify_best(store, key, job.task.shash, job.task.mod, target)
    # ids only: the store's rows, not MetaSchedule records rebuilt from them
    tools.trained_on.update(row.id for row in store.all_records(key, job.task.shash))
    default_sec = before.default_run_sec
    if default_sec is None:
        default_sec = _default_run_sec(job, target, tools)
    store.mark_complete(key, job.task.shash, job.search.trials, default_sec)
    result = _result(job, before, slice_progress(store, key, job.task.shash), default_sec,
                     worker, tools, started)
    return replace(result, wrong_schedules=len(wrong))


def _seed(job: TuneJob, target: Target, tools: WorkerTools, database: SliceDatabase,
          workload: ms.database.Workload, remaining: int) -> int:
    """Schedules measured before a new slice's search: the workload's best at the nearest
    tuned shares (transfer), or, for a workload never tuned on this target, similar
    workloads' best (warm); returns how many were measured."""
    if not (job.search.transfer or job.search.warm):
        return 0
    limit = min(remaining, job.search.trials_per_round)
    key = job.slice_key
    never_tuned = not tools.store.tuned_shares(key.target_key, key.share_kind, job.task.shash)
    if job.search.transfer and not never_tuned:
        return seed_from_nearest_shares(job, target, database, workload, tools, limit)
    if job.search.warm and never_tuned:
        return seed_from_similar(job, target, database, workload, tools, limit)
    return 0


def _search(job: TuneJob, target: Target, tools: WorkerTools, database: SliceDatabase,
            workload: ms.database.Workload, trials: int) -> None:
    """`trials` more candidates of the job's task, each committed as it is measured."""
    earlier = tools.store.all_records(job.slice_key, job.task.shash)
    (logger,) = _job_loggers(job)
    context = _tune_context(job, target, tools.cores,
                            tools.module_hashes.of(workload.mod, earlier), logger)
    if job.search.warm:
        warm_from_neighbours(job, target, logger, tools)
    ms.tune_tasks(
        tasks=[context],
        task_weights=[1.0],
        work_dir=job.log_dir,
        max_trials_global=trials,
        num_trials_per_iter=min(job.search.trials_per_round, trials),
        builder=tools.builder,
        runner=tools.runner,
        database=database,
        cost_model=_warm_cost_model(job, tools, context, workload, earlier),
        task_scheduler="round-robin",
    )


def _result(job: TuneJob, before: SliceProgress, after: SliceProgress,
            default_sec: float | None, worker: str, tools: WorkerTools,
            started: float) -> TuneResult:
    return TuneResult(
        job_id=job.job_id, task_name=job.task.name, task_shash=job.task.shash,
        weight=job.task.weight, share=job.share,
        trials_measured=after.records - before.records,
        trials_failed=after.failed - before.failed,
        best_run_sec=after.best_run_sec, default_run_sec=default_sec, started_at=started,
        finished_at=time.time(), worker=worker, log_path=job.log_path,
        measuring_pid=tools.measuring_pid, slice_trials=after.records,
        task_group=job.task.group, task_also=job.task.also,
    )


def _default_run_sec(job: TuneJob, target: Target, tools: WorkerTools) -> float | None:
    """TVM's default schedule at this share (measured once per slice, then kept)."""
    return measure_module(default_schedule(job.task.mod, target), target, tools.builder,
                          tools.runner)


def _warm_cost_model(job: TuneJob, tools: WorkerTools, context: ms.TuneContext,
                     workload: ms.database.Workload,
                     earlier: list[StoredRecord]) -> ms.cost_model.XGBModel:
    """The worker's cost model, first trained on this slice's records it has not seen."""
    model = tools.model(job.search.trials_per_round)
    unseen = [row for row in earlier if row.id not in tools.trained_on]
    if unseen:
        model.update(context, [to_measure_candidate(row, workload) for row in unseen],
                     [ms.runner.RunnerResult([float(s) for s in row.run_secs], None)
                      for row in unseen])
        tools.trained_on.update(row.id for row in earlier)
    return model


def _job_loggers(job: TuneJob) -> list[logging.Logger]:
    """MetaSchedule's loggers for the job's folder. Its setup names every handler of its
    global logger and fails on one without a name (a host program's, e.g. pytest's
    capture): those are dropped from that logger first."""
    shared = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in [h for h in shared.handlers if h.get_name() is None]:
        shared.removeHandler(handler)
    return get_loggers_from_work_dir(job.log_dir, [job.task.name])


def _tune_context(job: TuneJob, target: Target, cores: int, measured: set[int],
                  logger: logging.Logger) -> ms.TuneContext:
    evolutionary = ms.search_strategy.EvolutionarySearch(
        population_size=job.search.population_size)
    return ms.TuneContext(
        mod=job.task.mod,
        target=target,
        space_generator="post-order-apply",
        # a fifth of MetaSchedule's population is the slice's best records (its
        # init_measured_ratio): asked for that many more, a round still brings enough fresh
        search_strategy=SkipMeasuredSearch(evolutionary, measured,
                                           extra=job.search.population_size // 5),
        task_name=job.task.name,
        logger=logger,
        num_threads=max(1, cores),
    )


def _prove_once(job: TuneJob, tools: WorkerTools, cores: tuple[int, ...]) -> None:
    """Ask the runner's own measuring process what share it runs at, and check that this
    host is the CPU the target is for (a schedule measured elsewhere says nothing).
    Once per target: the measuring process lives as long as the worker."""
    if job.target_json in tools.proven_for:
        return
    isa_problem = host_mismatch(json.loads(job.target_json))
    if isa_problem is not None:
        raise ShareNotProven(f"refusing to measure here: {isa_problem}")
    problem, pid = job.share.backend.prove(job.share, _in_measurer(tools), cores)
    if problem is not None:
        raise ShareNotProven(f"refusing to record at {job.share.label}: {problem}")
    tools.proven_for.add(job.target_json)
    tools.measuring_pid = pid


def _in_measurer(tools: WorkerTools) -> Callable[[Callable[..., Any], Any], Any]:
    def run(function: Callable[..., Any], argument: Any) -> Any:
        return tools.runner.pool.submit(function, argument).result()

    return run
