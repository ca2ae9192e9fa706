"""Fair share: groups of jobs and turns, and when GPUs held after a run or by a server end.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Groups on jobs and turns; end times that settle what a live kernel or server held."""
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("group_name", sa.String(255), nullable=True))
        jobs.add_column(
            sa.Column("owner_groups", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        jobs.add_column(sa.Column("live_ended_at", sa.Float(), nullable=True))
    with op.batch_alter_table("turns") as turns:
        turns.add_column(
            sa.Column("owner_groups", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        turns.add_column(sa.Column("ended_at", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the group columns."""
    with op.batch_alter_table("turns") as turns:
        turns.drop_column("ended_at")
        turns.drop_column("owner_groups")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("live_ended_at")
        jobs.drop_column("owner_groups")
        jobs.drop_column("group_name")
