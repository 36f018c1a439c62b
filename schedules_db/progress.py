"""How far one workload is tuned in one slice, read in a single statement.

Both the planner (what is left to tune) and a worker (what to resume from) ask this; it is
written once, here. Read-only; the statement goes through `Store.session`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from schedules_db.records import SliceCompletion, SliceKey, SliceProgress
from schedules_db.schema import ShareRow, SliceCompletionRow, TargetRow, TuningRecordRow, WorkloadRow
from schedules_db.store import Store


def slice_progress(store: Store, key: SliceKey, shash: str) -> SliceProgress:
    """Records, successful records, best time and completion of `shash` in slice `key`."""
    workload, target, share = _ids(key, shash)
    records = (TuningRecordRow.workload_id == workload, TuningRecordRow.target_id == target,
               TuningRecordRow.share_id == share)
    done = (SliceCompletionRow.workload_id == workload, SliceCompletionRow.target_id == target,
            SliceCompletionRow.share_id == share)

    def completion(column: Any) -> Any:
        return select(column).where(*done).scalar_subquery()

    stmt = select(
        func.count(TuningRecordRow.id), func.count(TuningRecordRow.mean_run_sec),
        func.min(TuningRecordRow.mean_run_sec), completion(SliceCompletionRow.trials_budget),
        completion(SliceCompletionRow.default_run_sec),
        completion(SliceCompletionRow.completed_at),
    ).where(*records)
    with store.session() as session:
        count, successful, best, budget, default_sec, completed_at = session.execute(stmt).one()
    finished = None if budget is None else SliceCompletion(budget, default_sec, completed_at)
    return SliceProgress(int(count), int(successful), best, finished)


def _ids(key: SliceKey, shash: str) -> tuple[Any, Any, Any]:
    """The slice's row ids as scalar subqueries (NULL, matching nothing, where absent)."""
    return (
        select(WorkloadRow.id).where(WorkloadRow.shash == shash).scalar_subquery(),
        select(TargetRow.id).where(TargetRow.key == key.target_key).scalar_subquery(),
        select(ShareRow.id).where(ShareRow.kind == key.share_kind,
                                  ShareRow.percent == key.share_percent).scalar_subquery(),
    )
