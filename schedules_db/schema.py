"""SQLAlchemy 2 tables of the schedule database: workloads, targets, shares, tuning records.

A tuning record belongs to exactly one (workload, target, share) slice. Only this module
declares tables; queries live in `schedules_db.store`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class WorkloadRow(Base):
    """One TensorIR workload, identified by MetaSchedule's structural hash."""

    __tablename__ = "workloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    mod_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class TargetRow(Base):
    """A compilation target, keyed without share-dependent attributes (see `targetkey`)."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(2048), unique=True)
    kind: Mapped[str] = mapped_column(String(32))


class ShareRow(Base):
    """A resource share: `percent` of one device of `kind` ('cpu' or 'gpu')."""

    __tablename__ = "shares"
    __table_args__ = (UniqueConstraint("kind", "percent", name="uq_share_kind_percent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    percent: Mapped[int] = mapped_column(Integer)


class TuningRecordRow(Base):
    """One measured candidate schedule. `mean_run_sec` is NULL when it failed to build or run."""

    __tablename__ = "tuning_records"
    __table_args__ = (
        Index("ix_record_slice_speed", "workload_id", "target_id", "share_id", "mean_run_sec"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    share_id: Mapped[int] = mapped_column(ForeignKey("shares.id"))
    target_json: Mapped[str] = mapped_column(Text)
    trace_json: Mapped[str] = mapped_column(Text)
    run_secs_json: Mapped[str] = mapped_column(Text)
    mean_run_sec: Mapped[float | None] = mapped_column(Float, nullable=True)
    args_info_json: Mapped[str] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    workload: Mapped[WorkloadRow] = relationship()
    target: Mapped[TargetRow] = relationship()
    share: Mapped[ShareRow] = relationship()


class SliceCompletionRow(Base):
    """A (workload, target, share) slice whose tuning job finished with this trial budget.

    A slice is complete once a job finished it, even with fewer records than the budget
    (small search spaces run out of candidates): a resumed run skips it.
    """

    __tablename__ = "slice_completions"
    __table_args__ = (
        UniqueConstraint("workload_id", "target_id", "share_id", name="uq_completion_slice"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    share_id: Mapped[int] = mapped_column(ForeignKey("shares.id"))
    trials_budget: Mapped[int] = mapped_column(Integer)
    default_run_sec: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelRow(Base):
    """A model as tuned: its name (zoo name or file path) and fingerprint (graph, weights
    and input shapes), so one file at two input shapes is two models."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("fingerprint", name="uq_model_fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(1024), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelTaskRow(Base):
    """A workload a model uses: the model's name for the task and how often it runs."""

    __tablename__ = "model_tasks"
    __table_args__ = (UniqueConstraint("model_id", "workload_id", name="uq_model_task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id"))
    task_name: Mapped[str] = mapped_column(String(512))
    uses: Mapped[int] = mapped_column(Integer)
