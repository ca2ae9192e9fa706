"""Adaptive sweeps: each job's Optuna trial, depth and whether its end was acted on; each
sweep's info.

Optuna's own tables (studies, trials, ...) are created by Optuna in the same database; they
are not this service's models (batch_service/sweep_optuna.py).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Plain ADD COLUMNs (no batch rebuild of the jobs table)."""
    op.add_column("jobs", sa.Column("trial", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("depth", sa.Integer(), nullable=True))
    op.add_column(
        "jobs", sa.Column("followed_up", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("sweeps", sa.Column("info", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("sweeps") as sweeps:
        sweeps.drop_column("info")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("followed_up")
        jobs.drop_column("depth")
        jobs.drop_column("trial")
