"""Initial schema: jobs, job files, log lines, settings, weights, usage, turns.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False),
        sa.Column("entry_point", sa.String(1024), nullable=True),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("time_limit", sa.Integer(), nullable=False),
        sa.Column("live_window", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("live_until", sa.Float(), nullable=True),
        sa.Column("kernel_id", sa.String(64), nullable=True),
        sa.Column("output_path", sa.String(1024), nullable=True),
        sa.Column("progress_index", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("current_cell", sa.Text(), nullable=False),
        sa.Column("error_name", sa.String(255), nullable=False),
        sa.Column("error_value", sa.Text(), nullable=False),
        sa.Column("failed_cell", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_jobs_state_order", "jobs", ["state", "priority", "submitted_at"])
    op.create_index("ix_jobs_owner_submitted", "jobs", ["owner", "submitted_at"])
    op.create_index("ix_jobs_submitted", "jobs", ["submitted_at"])
    op.create_table(
        "job_files",
        sa.Column(
            "job_id",
            sa.String(16),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "log_lines",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.String(16), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("cell", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
    )
    op.create_index("ix_log_lines_job", "log_lines", ["job_id", "id"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
    )
    op.create_table(
        "weights",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("weight", sa.Float(), nullable=False),
    )
    op.create_table(
        "usage",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("submitted_at", sa.Float(), nullable=False),
        sa.Column("admitted_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_turns_state", "turns", ["state", "submitted_at"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("turns", "usage", "weights", "settings", "log_lines", "job_files", "jobs"):
        op.drop_table(table)
