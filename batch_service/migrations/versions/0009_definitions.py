"""Job definitions: notebooks on a cron schedule, and the jobs their firings submitted.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The job_definitions and definition_jobs tables."""
    op.create_table(
        "job_definitions",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False),
        sa.Column("input_size", sa.BigInteger(), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("entry_point", sa.String(1024), nullable=True),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("time_limit", sa.Integer(), nullable=True),
        sa.Column("owner_groups", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("on_overlap", sa.String(8), nullable=False),
        sa.Column("next_fire_at", sa.Float(), nullable=False),
        sa.Column("last_job_id", sa.String(16), nullable=True),
        sa.Column("last_fired_at", sa.Float(), nullable=True),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("last_skipped_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_job_definitions_due", "job_definitions", ["paused", "next_fire_at"])
    op.create_index("ix_job_definitions_owner", "job_definitions", ["owner", "created_at"])
    op.create_table(
        "definition_jobs",
        sa.Column(
            "definition_id",
            sa.String(16),
            sa.ForeignKey("job_definitions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "job_id", sa.String(16), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("fired_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_definition_jobs_job", "definition_jobs", ["job_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_definition_jobs_job", "definition_jobs")
    op.drop_table("definition_jobs")
    op.drop_index("ix_job_definitions_owner", "job_definitions")
    op.drop_index("ix_job_definitions_due", "job_definitions")
    op.drop_table("job_definitions")
