"""Exclusive runs: what the service saw of the machine a run had to itself.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A job's machine record (governor, load, CPUs at start; other servers seen)."""
    op.add_column("jobs", sa.Column("machine_record", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("machine_record")
