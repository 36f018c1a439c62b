"""Slice completions: which (workload, target, share) slices a job finished, and with what.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slice_completions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workload_id", sa.Integer(), sa.ForeignKey("workloads.id"), nullable=False),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("targets.id"), nullable=False),
        sa.Column("share_id", sa.Integer(), sa.ForeignKey("shares.id"), nullable=False),
        sa.Column("trials_budget", sa.Integer(), nullable=False),
        sa.Column("default_run_sec", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workload_id", "target_id", "share_id", name="uq_completion_slice"),
    )


def downgrade() -> None:
    op.drop_table("slice_completions")
