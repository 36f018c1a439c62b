"""A cost model that starts warm: before a job's search, the worker's XGBoost model first
trains on a sample of other workloads' records on the same target.

MetaSchedule's cost model scores each candidate from features of its loops and buffers
(not of the workload's identity) and learns per workload how far each schedule is from
that workload's fastest, so what it learned on one convolution carries to another. The
sample is small (at most `MAX_RECORDS`, the most similar workloads first, read for at most
`READ_SEC`: each record costs a trace replay and a feature extraction, about 15 ms on one
Zen core) and read once per worker and slice: later jobs of the worker keep the trained model.
"""

from __future__ import annotations

import logging
import time

from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from schedules_db.ms_adapter import stored_workload, to_measure_candidate
from schedules_db.neighbours import Neighbour, neighbours, sample_records
from workers.jobs import TuneJob
from workers.similar import ranked
from workers.warm import WorkerTools

MAX_WORKLOADS = 24
PER_WORKLOAD = 16
MAX_RECORDS = 256
READ_SEC = 3.0  # no further workload is read after this long (the first always is)
NO_TRAINING = 10**12  # a last-train size that makes XGBModel.update skip its training


def warm_from_neighbours(job: TuneJob, target: Target, logger: logging.Logger,
                         tools: WorkerTools) -> int:
    """Train the worker's cost model on other workloads' records (once per slice), with
    the job's target and MetaSchedule logger; returns how many records it learned from."""
    key = job.slice_key
    if key in tools.warmed_for:
        return 0
    tools.warmed_for.add(key)
    started = time.time()
    found = ranked(job.task.name, neighbours(tools.store, key, {job.task.shash}))
    batches = _batches(found[:MAX_WORKLOADS], target, logger, tools)
    model = tools.model(job.search.trials_per_round)
    if batches:  # one training for the whole sample, with the last batch
        saved, model.last_train_size = model.last_train_size, NO_TRAINING
        for context, candidates, results in batches[:-1]:
            model.update(context, candidates, results)
        model.last_train_size = saved
        model.update(*batches[-1])
    used = sum(len(candidates) for _, candidates, _ in batches)
    print(f"warm model: trained on {used} records of {len(batches)} other workloads "
          f"in {time.time() - started:.1f} s")  # job log
    return used


Batch = tuple[ms.TuneContext, list[ms.MeasureCandidate], list[ms.runner.RunnerResult]]


def _batches(found: list[Neighbour], target: Target, logger: logging.Logger,
             tools: WorkerTools) -> list[Batch]:
    batches: list[Batch] = []
    left = MAX_RECORDS
    deadline = time.monotonic() + READ_SEC
    for neighbour in found:
        rows = [row for row in sample_records(tools.store, neighbour, min(PER_WORKLOAD, left))
                if row.id not in tools.trained_on]
        if not rows:
            continue
        workload = stored_workload(tools.store, neighbour.shash)
        context = ms.TuneContext(mod=workload.mod, target=target, logger=logger,
                                 num_threads=tools.cores)
        batches.append((context, [to_measure_candidate(row, workload) for row in rows],
                        [ms.runner.RunnerResult([float(s) for s in row.run_secs], None)
                         for row in rows]))
        tools.trained_on.update(row.id for row in rows)
        left -= len(rows)
        if left <= 0 or time.monotonic() > deadline:
            break
    return batches
