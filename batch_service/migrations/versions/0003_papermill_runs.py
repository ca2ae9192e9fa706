"""Runs as papermill and `python -m` would: report mode, command-line arguments, warnings.

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
    """A job's report mode, its arguments and the warnings its submission got."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(
            sa.Column("report_mode", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        jobs.add_column(
            sa.Column("args", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        jobs.add_column(
            sa.Column("warnings", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("warnings")
        jobs.drop_column("args")
        jobs.drop_column("report_mode")
