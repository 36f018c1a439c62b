"""What the store knows about *other* workloads of a target: the records a tuning job can
learn from before it measures anything of its own.

A job's cost model trains first on a sample of other workloads' records (`sample_records`),
and a workload never tuned on the target starts from the best schedules of the most
similar stored ones (their slices' `Store.top_records`). Each other workload is read at its tuned share nearest
the job's (the same rule as the lookup), so one workload's records are never mixed across
shares: MetaSchedule's cost model normalises each workload's times by its fastest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import func, select

from schedules_db.lookup import choose_share
from schedules_db.records import SliceKey, StoredRecord
from schedules_db.schema import ModelTaskRow, TargetRow, TuningRecordRow, WorkloadRow
from schedules_db.store import Store, slice_query, to_stored


@dataclass(frozen=True)
class Neighbour:
    """Another workload with successful records on the job's target: its hash, a task name
    a model gave it ("" if no model names it), and the slice its records are read from."""

    shash: str
    task_name: str
    key: SliceKey


def neighbours(store: Store, key: SliceKey, exclude: set[str]) -> list[Neighbour]:
    """Every workload but `exclude` with successful records at `key`'s target, each at its
    tuned share nearest `key`'s."""
    named = (
        select(WorkloadRow.shash, func.min(ModelTaskRow.task_name))
        .join(TuningRecordRow, TuningRecordRow.workload_id == WorkloadRow.id)
        .join(TargetRow, TuningRecordRow.target_id == TargetRow.id)
        .outerjoin(ModelTaskRow, ModelTaskRow.workload_id == WorkloadRow.id)
        .where(TargetRow.key == key.target_key, TuningRecordRow.mean_run_sec.is_not(None))
        .group_by(WorkloadRow.shash)
    )
    with store.session() as session:
        rows = [(shash, name or "") for shash, name in session.execute(named)
                if shash not in exclude]
    found = []
    for shash, name in rows:
        share = choose_share(key.share_percent,
                             store.tuned_shares(key.target_key, key.share_kind, shash))
        if share.chosen_percent is not None:
            found.append(Neighbour(shash, name, replace(key, share_percent=share.chosen_percent)))
    return found


def sample_records(store: Store, neighbour: Neighbour, limit: int) -> list[StoredRecord]:
    """Up to `limit` successful records of the neighbour's slice, drawn at random (a cost
    model needs slow schedules as well as fast ones)."""
    stmt = (
        slice_query(neighbour.key, neighbour.shash)
        .where(TuningRecordRow.mean_run_sec.is_not(None))
        .order_by(func.random())
        .limit(limit)
    )
    with store.session() as session:
        return [to_stored(row, shash, neighbour.key) for row, shash in session.execute(stmt)]

