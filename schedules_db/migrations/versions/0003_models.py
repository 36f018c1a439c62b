"""Models and the workloads they use: which model a workload was tuned for, by task name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_model_fingerprint"),
    )
    op.create_index("ix_models_name", "models", ["name"])
    op.create_table(
        "model_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("workload_id", sa.Integer(), sa.ForeignKey("workloads.id"), nullable=False),
        sa.Column("task_name", sa.String(512), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.UniqueConstraint("model_id", "workload_id", name="uq_model_task"),
    )


def downgrade() -> None:
    op.drop_table("model_tasks")
    op.drop_index("ix_models_name", "models")
    op.drop_table("models")
