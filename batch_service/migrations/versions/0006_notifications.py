"""Notifications: each user's e-mail address, webhook and which events they want.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The notification_settings table."""
    op.create_table(
        "notification_settings",
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=False),
        sa.Column("webhook_secret", sa.String(64), nullable=False),
        sa.Column("on_start", sa.Boolean(), nullable=False),
        sa.Column("on_end", sa.Boolean(), nullable=False),
        sa.Column("on_turn", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("notification_settings")
