"""Cross-share transfer: a search at a share this workload was never tuned at starts from
the schedules that won at the nearest tuned shares (same workload, same target).

They are measured here first, as trials of this share committed to its slice, so the
evolutionary search's initial population (MetaSchedule picks the slice's best records
into it) and the worker's cost model both start from them. Never used for a slice that
already has records: a resumed search has its own.
"""

from __future__ import annotations

import logging

from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import TuningRecord, Workload
from tvm.target import Target

from schedules_db.lookup import nearest_shares_records
from schedules_db.ms_adapter import SliceDatabase, to_tuning_record
from workers.jobs import TuneJob
from workers.measure import measure_candidates
from workers.warm import WorkerTools

log = logging.getLogger(__name__)
FAILED_RUN_SECS = [1e10]  # what MetaSchedule records for a candidate that failed


def seed_from_nearest_shares(job: TuneJob, target: Target, database: SliceDatabase,
                             workload: Workload, tools: WorkerTools, limit: int) -> int:
    """Measure here up to `limit` of the nearest shares' best schedules of the job's
    workload and commit them to the job's slice; returns how many were measured."""
    rows = nearest_shares_records(tools.store, job.slice_key, job.task.shash, limit)
    records = [to_tuning_record(row, workload) for row in rows]
    candidates = [(r, c) for r in records if (c := _candidate(r, workload)) is not None]
    if not candidates:
        print("transfer: no records at other shares of this workload and target")  # job log
        return 0
    secs = measure_candidates([c for _, c in candidates], target, tools.builder, tools.runner)
    for (record, _), run_secs in zip(candidates, secs):
        database.commit_tuning_record(TuningRecord(
            record.trace, workload, run_secs or FAILED_RUN_SECS, target, record.args_info))
    shares = sorted({row.share_percent for row in rows})
    print(f"transfer: measured {len(candidates)} schedules from shares {shares} first")
    return len(candidates)


def _candidate(record: TuningRecord, workload: Workload) -> ms.MeasureCandidate | None:
    schedule = Schedule(workload.mod)
    try:
        record.trace.apply_to_schedule(schedule, remove_postproc=False)
    except Exception:  # a trace TVM cannot replay here is skipped, as MetaSchedule does
        log.warning("a transferred trace does not apply", exc_info=True)
        return None
    return ms.MeasureCandidate(schedule, record.args_info)
