"""The schedule store: every SQL statement of tunesvc goes through this module.

`Store` wraps one SQLAlchemy engine (SQLite file by default, any SQLAlchemy URL otherwise)
and offers a small primitive API over (workload, target, share) slices. Derived questions
("which share should this workload's schedule come from?") live in `schedules_db.lookup`.
Returned values are frozen dataclasses, never live ORM rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from schedules_db import migrate
from schedules_db.schema import (
    ShareRow,
    SliceCompletionRow,
    TargetRow,
    TuningRecordRow,
    WorkloadRow,
)

T = TypeVar("T")
FAILED_RUN_SEC = 1e9  # MetaSchedule records a failed build/run as 1e10 seconds


class StoreError(RuntimeError):
    """The database cannot be opened or reached."""


@dataclass(frozen=True)
class SliceKey:
    """One slice of the store: a target (share-independent key) at a share."""

    target_key: str
    target_kind: str
    share_kind: str
    share_percent: int


@dataclass(frozen=True)
class NewRecord:
    """A measured candidate, as MetaSchedule hands it over, in JSON text form."""

    workload_shash: str
    target_json: str
    trace_json: str
    run_secs: tuple[float, ...]
    args_info_json: str
    worker: str


@dataclass(frozen=True)
class StoredRecord:
    id: int
    workload_shash: str
    target_json: str
    share_percent: int
    trace_json: str
    run_secs: tuple[float, ...]
    args_info_json: str
    worker: str
    created_at: datetime

    @property
    def mean_run_sec(self) -> float | None:
        return mean_run_sec(self.run_secs)


@dataclass(frozen=True)
class SliceSummary:
    """What `tunesvc db records` shows: one (workload, target, share) slice."""

    workload_shash: str
    target_key: str
    share_kind: str
    share_percent: int
    best_run_sec: float | None
    records: int
    last_tuned: datetime


@dataclass(frozen=True)
class SliceCompletion:
    """A slice a tuning job finished: its budget and TVM's default-schedule latency there."""

    trials_budget: int
    default_run_sec: float | None
    completed_at: datetime


@dataclass(frozen=True)
class StoreStats:
    """What `tunesvc db stats` shows."""

    workloads: int
    targets: int
    shares: tuple[str, ...]
    records: int
    failed_records: int
    first_tuned: datetime | None
    last_tuned: datetime | None


def mean_run_sec(run_secs: tuple[float, ...]) -> float | None:
    """Mean measured time, or None for a failed candidate (no times, or MetaSchedule's 1e10)."""
    if not run_secs or any(not math.isfinite(s) or s >= FAILED_RUN_SEC for s in run_secs):
        return None
    return sum(run_secs) / len(run_secs)


def _enable_sqlite_concurrency(engine: Engine) -> None:
    # WAL lets readers proceed while one worker writes; busy_timeout makes writers queue
    # instead of failing with "database is locked" when several workers commit at once.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and listings."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create_store_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite settings tunesvc relies on; StoreError if bad."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            raise StoreError(f"database folder {folder} does not exist (from URL {url!r})")
    try:
        engine = create_engine(parsed, future=True)
    except Exception as exc:  # unknown dialect, missing driver
        raise StoreError(f"cannot use database URL {safe_url(url)!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _enable_sqlite_concurrency(engine)
    return engine


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

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; returns (from revision, to revision)."""
        return migrate.upgrade(self._engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self._engine.dispose()

    # --- identities -----------------------------------------------------------------------
    def ensure_workload(self, shash: str, mod_json: str) -> None:
        def insert_if_missing() -> None:
            with self.session() as session:
                if _workload_id(session, shash) is None:
                    session.add(WorkloadRow(shash=shash, mod_json=mod_json))

        _retry_once_on_conflict(insert_if_missing)

    def has_workload(self, shash: str) -> bool:
        with self.session() as session:
            return _workload_id(session, shash) is not None

    def workload_mod_json(self, shash: str) -> str | None:
        with self.session() as session:
            stmt = select(WorkloadRow.mod_json).where(WorkloadRow.shash == shash)
            return session.scalar(stmt)

    # --- records --------------------------------------------------------------------------
    def add_record(self, key: SliceKey, record: NewRecord) -> int:
        """Commit one record to slice `key`; the workload must have been ensured first."""
        return _retry_once_on_conflict(lambda: self._insert_record(key, record))

    def _insert_record(self, key: SliceKey, record: NewRecord) -> int:
        with self.session() as session:
            workload_id = _workload_id(session, record.workload_shash)
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
            _slice_query(key, shash)
            .where(TuningRecordRow.mean_run_sec.is_not(None))
            .order_by(TuningRecordRow.mean_run_sec, TuningRecordRow.id)
            .limit(limit)
        )
        with self.session() as session:
            return [_to_stored(row, shash_, key) for row, shash_ in session.execute(stmt)]

    def all_records(self, key: SliceKey, shash: str | None = None) -> list[StoredRecord]:
        """Every record of the slice (or of one workload in it), failed ones included,
        oldest first."""
        stmt = _slice_query(key, shash).order_by(TuningRecordRow.id)
        with self.session() as session:
            return [_to_stored(row, shash_, key) for row, shash_ in session.execute(stmt)]

    def mark_complete(self, key: SliceKey, shash: str, trials_budget: int,
                      default_run_sec: float | None) -> None:
        """Record that a job finished this slice (replacing an earlier completion)."""
        def write() -> None:
            with self.session() as session:
                ids = _slice_ids(session, key, shash)
                session.execute(delete(SliceCompletionRow).where(*_completion_of(ids)))
                session.add(SliceCompletionRow(workload_id=ids[0], target_id=ids[1],
                                               share_id=ids[2], trials_budget=trials_budget,
                                               default_run_sec=default_run_sec))

        _retry_once_on_conflict(write)

    def completion(self, key: SliceKey, shash: str) -> SliceCompletion | None:
        stmt = (
            select(SliceCompletionRow)
            .join(WorkloadRow, SliceCompletionRow.workload_id == WorkloadRow.id)
            .join(TargetRow, SliceCompletionRow.target_id == TargetRow.id)
            .join(ShareRow, SliceCompletionRow.share_id == ShareRow.id)
            .where(WorkloadRow.shash == shash, TargetRow.key == key.target_key)
            .where(ShareRow.kind == key.share_kind, ShareRow.percent == key.share_percent)
        )
        with self.session() as session:
            row = session.scalar(stmt)
            if row is None:
                return None
            return SliceCompletion(row.trials_budget, row.default_run_sec, row.completed_at)

    def delete_records(self, key: SliceKey, shash: str) -> int:
        """Remove one workload's records from the slice; returns how many were removed."""
        ids = select(TuningRecordRow.id).where(
            TuningRecordRow.id.in_(_slice_query(key, shash).with_only_columns(TuningRecordRow.id)))
        with self.session() as session:
            doomed = list(session.scalars(ids))
            if doomed:
                session.execute(delete(TuningRecordRow).where(TuningRecordRow.id.in_(doomed)))
            workload_id = _workload_id(session, shash)
            if workload_id is not None:
                slice_ids = (workload_id, _target_id(session, key), _share_id(session, key))
                session.execute(delete(SliceCompletionRow).where(*_completion_of(slice_ids)))
            return len(doomed)

    def count_records(self, key: SliceKey, shash: str | None = None,
                      successful_only: bool = False) -> int:
        query = _slice_query(key, shash)
        if successful_only:
            query = query.where(TuningRecordRow.mean_run_sec.is_not(None))
        stmt = select(func.count()).select_from(query.subquery())
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

    def stats(self) -> StoreStats:
        with self.session() as session:
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

    def summaries(self) -> list[SliceSummary]:
        """One row per (workload, target, share) slice holding records."""
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
        with self.session() as session:
            return [SliceSummary(*row) for row in session.execute(stmt)]


def _count(session: Session, column: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count(column)).where(*where)) or 0)


def _retry_once_on_conflict(write: Callable[[], T]) -> T:
    # Two workers may create the same workload/target/share row at once; the loser's
    # transaction is rolled back whole, and on the retry the row exists.
    try:
        return write()
    except IntegrityError:
        return write()


def _slice_ids(session: Session, key: SliceKey, shash: str) -> tuple[int, int, int]:
    workload_id = _workload_id(session, shash)
    if workload_id is None:
        raise KeyError(f"workload {shash} was never committed")
    return workload_id, _target_id(session, key), _share_id(session, key)


def _completion_of(ids: tuple[int, int, int]) -> tuple[Any, ...]:
    return (SliceCompletionRow.workload_id == ids[0], SliceCompletionRow.target_id == ids[1],
            SliceCompletionRow.share_id == ids[2])


def _workload_id(session: Session, shash: str) -> int | None:
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


def _slice_query(key: SliceKey, shash: str | None):  # type: ignore[no-untyped-def]
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


def _to_stored(row: TuningRecordRow, shash: str, key: SliceKey) -> StoredRecord:
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
