"""Warm batch servers: the named server each job runs in (null: its own `batch-<id>`).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A plain ADD COLUMN: every existing job ran in its own server."""
    op.add_column("jobs", sa.Column("server", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("server")
