"""The schedule store's primitives: every write, and the reads tuning and lookup build on.

`Store` wraps one SQLAlchemy engine (`schedules_db.engine`) and offers a small API over
(workload, target, share) slices. Derived questions live above it: which share a schedule
comes from (`lookup`), how far a slice is tuned (`progress`), what the CLI lists
(`inventory`). Returned values are frozen dataclasses (`records`), never live ORM rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from schedules_db import migrate
from schedules_db.engine import StoreError, create_store_engine, safe_url
from schedules_db.records import (FAILED_RUN_SECS, NewRecord, SliceKey, StoredRecord,
                                  mean_run_sec)
from schedules_db.schema import (
    ShareRow,
    SliceCompletionRow,
    TargetRow,
    TuningRecordRow,
    WorkloadRow,
)

T = TypeVar("T")



class Store:
    """A schedule database at one SQLAlchemy URL. Safe to use from one thread at a time;
    several processes may share one database (each opens its own Store)."""

    def __init__(self, url: str) -> None:
        self.url = safe_url(url)
        self._engine = create_store_engine(url)
        try:
            self._check_schema()
        except OperationalError as exc:
            reason = (str(exc.orig).strip().splitlines() or ["no answer"])[0]
            raise StoreError(f"cannot reach database {safe_url(url)!r}: {reason}") from None
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def _check_schema(self) -> None:
        state = migrate.schema_state(self._engine)
        if state.is_new:
            migrate.upgrade(self._engine)
        elif not state.up_to_date:
            raise StoreError(
                f"database {self.url} has schema revision {state.current or 'none'}, this "
                f"tunesvc needs {state.head}: run `tunesvc db upgrade --db URL`"
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- identities -----------------------------------------------------------------------
    def ensure_workload(self, shash: str, mod_json: str) -> None:
        def insert_if_missing() -> None:
            with self.session() as session:
                if workload_id_of(session, shash) is None:
                    session.add(WorkloadRow(shash=shash, mod_json=mod_json))

        retry_once_on_conflict(insert_if_missing)

    def has_workload(self, shash: str) -> bool:
        with self.session() as session:
            return workload_id_of(session, shash) is not None

    def workload_mod_json(self, shash: str) -> str | None:
        with self.session() as session:
            stmt = select(WorkloadRow.mod_json).where(WorkloadRow.shash == shash)
            return session.scalar(stmt)

    # --- records --------------------------------------------------------------------------
    def add_record(self, key: SliceKey, record: NewRecord) -> int:
        """Commit one record to slice `key`; the workload must have been ensured first."""
        return retry_once_on_conflict(lambda: self._insert_record(key, record))

    def _insert_record(self, key: SliceKey, record: NewRecord) -> int:
        with self.session() as session:
            workload_id = workload_id_of(session, record.workload_shash)
            if workload_id is None:
                raise KeyError(f"workload {record.workload_shash} was never committed")
            row = TuningRecordRow(
                workload_id=workload_id,
                target_id=_target_id(session, key),
                share_id=_share_id(session, key),
                target_json=record.target_json,
                trace_json=record.trace_json,
                run_secs_json=json.dumps(list(record.run_secs)),
                mean_run_sec=mean_run_sec(record.run_secs),
                args_info_json=record.args_info_json,
                worker=record.worker,
            )
            session.add(row)
            session.flush()
            return row.id

    def top_records(self, key: SliceKey, shash: str | None, limit: int | None) -> list[StoredRecord]:
        """Successful records of the slice (one workload, or all with shash=None), fastest first."""
        stmt = (
            slice_query(key, shash)
            .where(TuningRecordRow.mean_run_sec.is_not(None))
            .order_by(TuningRecordRow.mean_run_sec, TuningRecordRow.id)
            .limit(limit)
        )
        with self.session() as session:
            return [to_stored(row, shash_, key) for row, shash_ in session.execute(stmt)]

    def all_records(self, key: SliceKey, shash: str | None = None) -> list[StoredRecord]:
        """Every record of the slice (or of one workload in it), failed ones included,
        oldest first."""
        stmt = slice_query(key, shash).order_by(TuningRecordRow.id)
        with self.session() as session:
            return [to_stored(row, shash_, key) for row, shash_ in session.execute(stmt)]

    def mark_failed(self, record_id: int) -> None:
        """Count a stored record as a failed candidate (its schedule computes wrong outputs):
        no lookup, search or cost model takes it for a good schedule again."""
        with self.session() as session:
            session.execute(update(TuningRecordRow).where(TuningRecordRow.id == record_id)
                            .values(run_secs_json=json.dumps(list(FAILED_RUN_SECS)),
                                    mean_run_sec=None))

    def mark_complete(self, key: SliceKey, shash: str, trials_budget: int,
                      default_run_sec: float | None) -> None:
        """Record that a job finished this slice (replacing an earlier completion)."""
        def write() -> None:
            with self.session() as session:
                ids = slice_ids(session, key, shash)
                session.execute(delete(SliceCompletionRow).where(*completion_of(ids)))
                session.add(SliceCompletionRow(workload_id=ids[0], target_id=ids[1],
                                               share_id=ids[2], trials_budget=trials_budget,
                                               default_run_sec=default_run_sec))

        retry_once_on_conflict(write)

    def delete_records(self, key: SliceKey, shash: str) -> int:
        """Remove one workload's records from the slice; returns how many were removed."""
        ids = select(TuningRecordRow.id).where(
            TuningRecordRow.id.in_(slice_query(key, shash).with_only_columns(TuningRecordRow.id)))
        with self.session() as session:
            doomed = list(session.scalars(ids))
            if doomed:
                session.execute(delete(TuningRecordRow).where(TuningRecordRow.id.in_(doomed)))
            workload_id = workload_id_of(session, shash)
            if workload_id is not None:
                slice_ids = (workload_id, _target_id(session, key), _share_id(session, key))
                session.execute(delete(SliceCompletionRow).where(*completion_of(slice_ids)))
            return len(doomed)

    def count_records(self, key: SliceKey, shash: str | None = None) -> int:
        """Records of the slice (or of one workload in it), failed ones included."""
        stmt = select(func.count()).select_from(slice_query(key, shash).subquery())
        with self.session() as session:
            return int(session.scalar(stmt) or 0)

    def tuned_shares(self, target_key: str, share_kind: str, shash: str) -> list[int]:
        """Percentages at which this workload has at least one successful record."""
        # One index probe per share (EXISTS stops at the first hit), so the cost does not
        # grow with the number of records a workload has.
        has_record = (
            select(TuningRecordRow.id)
            .join(TargetRow, TuningRecordRow.target_id == TargetRow.id)
            .join(WorkloadRow, TuningRecordRow.workload_id == WorkloadRow.id)
            .where(TuningRecordRow.share_id == ShareRow.id, TargetRow.key == target_key)
            .where(WorkloadRow.shash == shash, TuningRecordRow.mean_run_sec.is_not(None))
            .exists()
        )
        stmt = select(ShareRow.percent).where(ShareRow.kind == share_kind, has_record)
        with self.session() as session:
            return sorted(session.scalars(stmt))

def retry_once_on_conflict(write: Callable[[], T]) -> T:
    # Two workers may create the same workload/target/share row at once; the loser's
    # transaction is rolled back whole, and on the retry the row exists. A connection
    # lost mid-write (a server restart) is retried once too: the engine reconnects.
    try:
        return write()
    except IntegrityError:
        return write()
    except OperationalError as exc:
        if not exc.connection_invalidated:
            raise
        return write()


def slice_ids(session: Session, key: SliceKey, shash: str) -> tuple[int, int, int]:
    workload_id = workload_id_of(session, shash)
    if workload_id is None:
        raise KeyError(f"workload {shash} was never committed")
    return workload_id, _target_id(session, key), _share_id(session, key)


def completion_of(ids: tuple[int, int, int]) -> tuple[Any, ...]:
    return (SliceCompletionRow.workload_id == ids[0], SliceCompletionRow.target_id == ids[1],
            SliceCompletionRow.share_id == ids[2])


def workload_id_of(session: Session, shash: str) -> int | None:
    return session.scalar(select(WorkloadRow.id).where(WorkloadRow.shash == shash))


def _target_id(session: Session, key: SliceKey) -> int:
    found = session.scalar(select(TargetRow.id).where(TargetRow.key == key.target_key))
    if found is not None:
        return found
    row = TargetRow(key=key.target_key, kind=key.target_kind)
    session.add(row)
    session.flush()
    return row.id


def _share_id(session: Session, key: SliceKey) -> int:
    stmt = select(ShareRow.id).where(
        ShareRow.kind == key.share_kind, ShareRow.percent == key.share_percent
    )
    found = session.scalar(stmt)
    if found is not None:
        return found
    row = ShareRow(kind=key.share_kind, percent=key.share_percent)
    session.add(row)
    session.flush()
    return row.id


def slice_query(key: SliceKey, shash: str | None):  # type: ignore[no-untyped-def]
    stmt = (
        select(TuningRecordRow, WorkloadRow.shash)
        .join(WorkloadRow, TuningRecordRow.workload_id == WorkloadRow.id)
        .join(TargetRow, TuningRecordRow.target_id == TargetRow.id)
        .join(ShareRow, TuningRecordRow.share_id == ShareRow.id)
        .where(TargetRow.key == key.target_key)
        .where(ShareRow.kind == key.share_kind, ShareRow.percent == key.share_percent)
    )
    if shash is not None:
        stmt = stmt.where(WorkloadRow.shash == shash)
    return stmt


def to_stored(row: TuningRecordRow, shash: str, key: SliceKey) -> StoredRecord:
    # The share comes from the slice queried, not row.share: that relationship would cost
    # one more query per record.
    return StoredRecord(
        id=row.id,
        workload_shash=shash,
        target_json=row.target_json,
        share_percent=key.share_percent,
        trace_json=row.trace_json,
        run_secs=tuple(json.loads(row.run_secs_json)),
        args_info_json=row.args_info_json,
        worker=row.worker,
        created_at=row.created_at,
    )
