"""What the store holds, across slices: what `tunesvc db` lists and what `run` explains.

Read-only; every statement goes through `Store.session`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schedules_db.records import SliceKey, SliceSummary, StoreStats
from schedules_db.schema import ShareRow, TargetRow, TuningRecordRow, WorkloadRow
from schedules_db.store import Store, slice_query


def workloads_by_other_target(store: Store, shashes: Iterable[str], target_kind: str,
                              share_kind: str, except_key: str) -> dict[str, int]:
    """Target keys (of `target_kind`, other than `except_key`) holding successful records
    of any of these workloads at shares of `share_kind`, with how many workloads each."""
    wanted = sorted(set(shashes))
    if not wanted:
        return {}
    stmt = (
        select(TargetRow.key, func.count(func.distinct(TuningRecordRow.workload_id)))
        .join(TargetRow, TuningRecordRow.target_id == TargetRow.id)
        .join(WorkloadRow, TuningRecordRow.workload_id == WorkloadRow.id)
        .join(ShareRow, TuningRecordRow.share_id == ShareRow.id)
        .where(TargetRow.kind == target_kind, TargetRow.key != except_key)
        .where(ShareRow.kind == share_kind, WorkloadRow.shash.in_(wanted))
        .where(TuningRecordRow.mean_run_sec.is_not(None))
        .group_by(TargetRow.key)
        .order_by(TargetRow.key)
    )
    with store.session() as session:
        return {key: int(count) for key, count in session.execute(stmt)}


def stats(store: Store) -> StoreStats:
    """What `tunesvc db stats` shows."""
    with store.session() as session:
        shares = session.execute(
            select(ShareRow.kind, ShareRow.percent)
            .where(ShareRow.id.in_(select(TuningRecordRow.share_id)))
            .order_by(ShareRow.kind, ShareRow.percent)
        )
        first, last = session.execute(
            select(func.min(TuningRecordRow.created_at), func.max(TuningRecordRow.created_at))
        ).one()
        return StoreStats(
            workloads=_count(session, WorkloadRow.id),
            targets=_count(session, TargetRow.id),
            shares=tuple(f"{kind}:{percent}%" for kind, percent in shares),
            records=_count(session, TuningRecordRow.id),
            failed_records=_count(session, TuningRecordRow.id,
                                  TuningRecordRow.mean_run_sec.is_(None)),
            first_tuned=first,
            last_tuned=last,
        )


def summaries(store: Store, shashes: Iterable[str] | None = None,
              target_key: str | None = None, key: SliceKey | None = None) -> list[SliceSummary]:
    """One row per (workload, target, share) slice holding records: of these workloads
    only, of one target (any share) only, of one slice only, as asked."""
    stmt = (
        select(
            WorkloadRow.shash,
            TargetRow.key,
            ShareRow.kind,
            ShareRow.percent,
            func.min(TuningRecordRow.mean_run_sec),
            func.count(TuningRecordRow.id),
            func.max(TuningRecordRow.created_at),
        )
        .join(WorkloadRow, TuningRecordRow.workload_id == WorkloadRow.id)
        .join(TargetRow, TuningRecordRow.target_id == TargetRow.id)
        .join(ShareRow, TuningRecordRow.share_id == ShareRow.id)
        .group_by(WorkloadRow.shash, TargetRow.key, ShareRow.kind, ShareRow.percent)
        .order_by(WorkloadRow.shash, TargetRow.key, ShareRow.kind, ShareRow.percent)
    )
    if shashes is not None:
        stmt = stmt.where(WorkloadRow.shash.in_(sorted(set(shashes))))
    if key is not None:
        target_key = key.target_key
        stmt = stmt.where(ShareRow.kind == key.share_kind, ShareRow.percent == key.share_percent)
    if target_key is not None:
        stmt = stmt.where(TargetRow.key == target_key)
    with store.session() as session:
        return [SliceSummary(*row) for row in session.execute(stmt)]


def _count(session: Session, column: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count(column)).where(*where)) or 0)


def record_timeline(store: Store, key: SliceKey,
                    shashes: Iterable[str]) -> list[tuple[datetime, str, float | None]]:
    """(when, workload, mean run time or None if it failed) of every record of these
    workloads in slice `key`, in the order they were measured."""
    stmt = (slice_query(key, None)
            .where(WorkloadRow.shash.in_(sorted(set(shashes))))
            .order_by(TuningRecordRow.created_at, TuningRecordRow.id)
            .with_only_columns(TuningRecordRow.created_at, WorkloadRow.shash,
                               TuningRecordRow.mean_run_sec))
    with store.session() as session:
        return [(when, shash, sec) for when, shash, sec in session.execute(stmt)]
