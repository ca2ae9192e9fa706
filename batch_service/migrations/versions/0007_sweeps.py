"""Parameter sweeps: the sweeps table, and each job's sweep, point hash and recorded values.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The sweeps table; plain ADD COLUMNs on jobs (no batch rebuild of the table)."""
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("time_limit", sa.Integer(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("record", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("failed_live_window", sa.Integer(), nullable=False),
        sa.Column("keep_succeeded", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_sweeps_owner_spec", "sweeps", ["owner", "spec_hash"], unique=True)
    op.add_column("jobs", sa.Column("sweep_id", sa.String(16), nullable=True))
    op.add_column("jobs", sa.Column("point_hash", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("recorded", sa.JSON(), nullable=False, server_default="{}"))
    op.create_index("ix_jobs_sweep_point", "jobs", ["sweep_id", "point_hash"], unique=True)


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_jobs_sweep_point", table_name="jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("recorded")
        jobs.drop_column("point_hash")
        jobs.drop_column("sweep_id")
    op.drop_index("ix_sweeps_owner_spec", table_name="sweeps")
    op.drop_table("sweeps")
