"""Runs as papermill and `python -m` would: report mode, command-line arguments, warnings.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A job's report mode, its arguments and the warnings its submission got."""
    # Plain ADD COLUMN: a batch rebuild of `jobs` on SQLite would drop and recreate the table.
    op.add_column(
        "jobs", sa.Column("report_mode", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("jobs", sa.Column("args", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("jobs", sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("warnings")
        jobs.drop_column("args")
        jobs.drop_column("report_mode")
