"""Durable trigger state: a plugin trigger's own state (cursor, dedup keys) and the executions
it waits to hear the end of, written with the execution an evaluation creates; a schedule's
backfill.

Revision ID: 0040
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trigger_states") as batch:
        batch.add_column(sa.Column("state", sa.Text, nullable=True))
        batch.add_column(sa.Column("watching", sa.Text, nullable=True))
        batch.add_column(sa.Column("backfill", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trigger_states") as batch:
        batch.drop_column("backfill")
        batch.drop_column("watching")
        batch.drop_column("state")
