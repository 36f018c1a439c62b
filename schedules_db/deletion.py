"""Deleting records in bulk: every record of some workloads, at one share or at all."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from schedules_db.schema import ShareRow, SliceCompletionRow, TuningRecordRow, WorkloadRow
from schedules_db.store import Store


def _matching(table, shashes: list[str], share_percent: int | None):  # type: ignore[no-untyped-def]
    """WHERE clauses selecting `table` rows of these workloads (at this share percent)."""
    where = [table.workload_id.in_(select(WorkloadRow.id).where(WorkloadRow.shash.in_(shashes)))]
    if share_percent is not None:
        where.append(table.share_id.in_(select(ShareRow.id)
                                        .where(ShareRow.percent == share_percent)))
    return where


def count_records_of(store: Store, shashes: list[str], share_percent: int | None) -> int:
    stmt = select(func.count(TuningRecordRow.id)).where(
        *_matching(TuningRecordRow, shashes, share_percent))
    with store.session() as session:
        return int(session.scalar(stmt) or 0)


def delete_records_of(store: Store, shashes: list[str], share_percent: int | None) -> int:
    """Delete the records (and slice completions) of these workloads; returns how many
    records went. One transaction: all go, or none."""
    with store.session() as session:
        gone = session.execute(delete(TuningRecordRow).where(
            *_matching(TuningRecordRow, shashes, share_percent)))
        session.execute(delete(SliceCompletionRow).where(
            *_matching(SliceCompletionRow, shashes, share_percent)))
        return int(gone.rowcount or 0)
