"""A change counter for the server's caches: ``plait_changes.version`` is bumped, in the same
transaction, by every change to the rows a request's checks read (API tokens, flows, a
trigger's ``disabled``), whichever process makes it. A server caches its token checks and flow
lookups and compares one integer per request instead of reading them again.

The bumps are database triggers, so a writer that knows nothing of the caches (an older CLI,
a SQL shell) still invalidates them. On SQLite a table rebuilt by a later migration
(``batch_alter_table``) loses its triggers: re-create them there with :func:`create_bumps`
(``tests/storage/test_changes.py`` fails when one is missing at the head).

Revision ID: 0090
Revises: 0050
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0090"
down_revision = "0060"
branch_labels = None
depends_on = None

#: Table -> the change that bumps the counter (``None``: any insert, update or delete).
WATCHED: dict[str, str | None] = {
    "api_tokens": None,
    "flows": None,
    "trigger_states": "disabled",
}


def create_bumps(table: str, column: str | None) -> None:
    """The triggers bumping ``plait_changes.version`` on a change to ``table``."""
    if op.get_bind().dialect.name == "postgresql":
        update = f"UPDATE OF {column}" if column else "UPDATE"
        op.execute(
            f"CREATE TRIGGER plait_bump_{table} AFTER INSERT OR DELETE OR {update} "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION plait_bump_changes()"
        )
        return
    for event in ("INSERT", "UPDATE", "DELETE"):
        on = f"UPDATE OF {column}" if event == "UPDATE" and column else event
        op.execute(
            f"CREATE TRIGGER plait_bump_{table}_{event.lower()} AFTER {on} ON {table} "
            "BEGIN UPDATE plait_changes SET version = version + 1; END"
        )


def drop_bumps(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS plait_bump_{table} ON {table}")
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS plait_bump_{table}_{event}")


def upgrade() -> None:
    changes = op.create_table(
        "plait_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "version": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION plait_bump_changes() RETURNS trigger AS $$ "
            "BEGIN UPDATE plait_changes SET version = version + 1; RETURN NULL; END "
            "$$ LANGUAGE plpgsql"
        )
    for table, column in WATCHED.items():
        create_bumps(table, column)


def downgrade() -> None:
    for table in WATCHED:
        drop_bumps(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS plait_bump_changes()")
    op.drop_table("plait_changes")
