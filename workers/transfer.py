"""Cross-share transfer: a search at a share this workload was never tuned at starts from
the schedules that won at the nearest tuned shares (same workload, same target).

They are measured here first as seeds (`workers.seeding`). Never used for a slice that
already has records: a resumed search has its own.
"""

from __future__ import annotations

from tvm.s_tir import Schedule
from tvm.s_tir.meta_schedule.database import Workload
from tvm.target import Target

from schedules_db.lookup import nearest_shares_records
from schedules_db.ms_adapter import SliceDatabase, to_tuning_record
from workers.jobs import TuneJob
from workers.seeding import measure_seeds, replayed
from workers.warm import WorkerTools


def seed_from_nearest_shares(job: TuneJob, target: Target, database: SliceDatabase,
                             workload: Workload, tools: WorkerTools, limit: int) -> int:
    """Measure here up to `limit` of the nearest shares' best schedules of the job's
    workload and commit them to the job's slice; returns how many were measured."""
    rows = nearest_shares_records(tools.store, job.slice_key, job.task.shash, limit)
    schedules = [s for row in rows
                 if (s := replayed(to_tuning_record(row, workload).trace,
                                    Schedule(workload.mod))) is not None]
    if not schedules:
        print("transfer: no records at other shares of this workload and target")  # job log
        return 0
    measured = measure_seeds(schedules, target, database, workload, tools)
    shares = sorted({row.share_percent for row in rows})
    print(f"transfer: measured {measured} schedules from shares {shares} first")
    return measured
