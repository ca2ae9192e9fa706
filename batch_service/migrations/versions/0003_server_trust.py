"""Trust: each start of a batch server has its own id; run times are the service's own.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """When the service admitted a job, which start of its server may report, and a kernel the
    run kept that is not yet reachable through the hub."""
    # Plain ADD COLUMN: a batch rebuild of `jobs` on SQLite would drop and recreate the table.
    op.add_column("jobs", sa.Column("admitted_at", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("start_id", sa.String(32), nullable=True))
    op.add_column(
        "jobs", sa.Column("live_pending", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("live_pending")
        jobs.drop_column("start_id")
        jobs.drop_column("admitted_at")
