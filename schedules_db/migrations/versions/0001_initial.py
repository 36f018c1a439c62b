"""The first schema: workloads, targets, shares, tuning records.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("shash", sa.String(64), nullable=False),
        sa.Column("mod_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workloads_shash", "workloads", ["shash"], unique=True)
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(2048), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.UniqueConstraint("kind", "percent", name="uq_share_kind_percent"),
    )
    op.create_table(
        "tuning_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workload_id", sa.Integer(), sa.ForeignKey("workloads.id"), nullable=False),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("targets.id"), nullable=False),
        sa.Column("share_id", sa.Integer(), sa.ForeignKey("shares.id"), nullable=False),
        sa.Column("target_json", sa.Text(), nullable=False),
        sa.Column("trace_json", sa.Text(), nullable=False),
        sa.Column("run_secs_json", sa.Text(), nullable=False),
        sa.Column("mean_run_sec", sa.Float(), nullable=True),
        sa.Column("args_info_json", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_record_slice_speed", "tuning_records",
                    ["workload_id", "target_id", "share_id", "mean_run_sec"])


def downgrade() -> None:
    op.drop_index("ix_record_slice_speed", table_name="tuning_records")
    op.drop_table("tuning_records")
    op.drop_table("shares")
    op.drop_table("targets")
    op.drop_index("ix_workloads_shash", table_name="workloads")
    op.drop_table("workloads")
