"""Initial schema: flows, executions, task runs, logs, metrics, secrets, KV.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("flow_id", sa.String(255), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("flow_id", sa.String(255), nullable=False),
        sa.Column("flow_revision", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", _TS, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("parent_execution_id", sa.String(32), nullable=True),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_executions_flow", "executions", ["namespace", "flow_id", "id"])
    op.create_index("ix_executions_state", "executions", ["state"])
    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "execution_id",
            sa.String(32),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_task_runs_execution", "task_runs", ["execution_id", "id"])
    op.create_table(
        "logs",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(32), nullable=False),
        sa.Column("taskrun_id", sa.String(32), nullable=True),
        sa.Column("task_id", sa.String(255), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
    )
    op.create_index("ix_logs_execution", "logs", ["execution_id", "seq"])
    op.create_table(
        "metrics",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(32), nullable=False),
        sa.Column("taskrun_id", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
    )
    op.create_index("ix_metrics_execution", "metrics", ["execution_id", "seq"])
    op.create_table(
        "secrets",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("updated", _TS, nullable=False),
    )
    op.create_table(
        "kv",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", _TS, nullable=False),
        sa.Column("expires", _TS, nullable=True),
    )
    op.create_table(
        "secret_reads",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(32), nullable=True),
        sa.Column("task_id", sa.String(255), nullable=True),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.UniqueConstraint("seq"),
    )


def downgrade() -> None:
    for table in (
        "secret_reads",
        "kv",
        "secrets",
        "metrics",
        "logs",
        "task_runs",
        "executions",
        "flows",
    ):
        op.drop_table(table)
