"""Questions about what the store holds beyond one slice, for what the CLI explains.

Read-only; every statement goes through `Store.session`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from schedules_db.schema import ShareRow, TargetRow, TuningRecordRow, WorkloadRow
from schedules_db.store import Store


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
