"""Flow triggers and trigger locks: which ended executions each flow trigger handled, and the
lock a trigger evaluation holds (who, until when) with the last conditions outcome.

Revision ID: 0050
Revises: 0040
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_trigger_events",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("flow_id", sa.String(255), primary_key=True),
        sa.Column("trigger_id", sa.String(255), primary_key=True),
        sa.Column("upstream_id", sa.String(32), primary_key=True),
        sa.Column("upstream_attempt", sa.Integer, primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(32), nullable=True),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_flow_trigger_events_execution", "flow_trigger_events", ["execution_id"])
    op.create_index("ix_executions_updated", "executions", ["updated"])
    with op.batch_alter_table("trigger_states") as batch:
        batch.add_column(sa.Column("locked_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_condition", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trigger_states") as batch:
        batch.drop_column("last_condition")
        batch.drop_column("locked_until")
        batch.drop_column("locked_by")
    op.drop_index("ix_executions_updated", "executions")
    op.drop_index("ix_flow_trigger_events_execution", "flow_trigger_events")
    op.drop_table("flow_trigger_events")
