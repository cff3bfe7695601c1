"""Pause requests in their own column (like kill requests), and the server's login sessions.

Revision ID: 0030
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(
            sa.Column("pause_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("csrf_hash", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_sessions_user", "user_id"),
        sa.Index("ix_sessions_expires", "expires"),
    )


def downgrade() -> None:
    op.drop_table("sessions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("pause_requested")
