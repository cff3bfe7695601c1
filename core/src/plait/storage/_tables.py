"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` must match it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.mysql import LONGBLOB

metadata = MetaData()

_SEQ = BigInteger().with_variant(Integer, "sqlite")

flows = Table(
    "flows",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("flow_id", String(255), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("flow_id", String(255), nullable=False),
    Column("flow_revision", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("parent_execution_id", String(32), nullable=True),
    Column("document", Text, nullable=False),
    # Written only by kill requests (never by the process driving the execution), so a kill
    # from another process cannot be overwritten by that process's next save. (0002)
    Column("kill_requested", Boolean, nullable=False, server_default=false()),
    # Likewise written only by pause requests, and cleared by the resume (0030).
    Column("pause_requested", Boolean, nullable=False, server_default=false()),
    # The lease: who drives the execution and until when (0003). ``lease_expires`` is NULL
    # when nobody holds it (the owner is then the last one, kept for diagnosis); the epoch
    # grows with every claim, and fenced saves check it (Repository.claim and save).
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires", DateTime(timezone=True), nullable=True),
    Column("lease_epoch", Integer, nullable=False, server_default="0"),
    Index("ix_executions_flow", "namespace", "flow_id", "id"),
    Index("ix_executions_state", "state"),
    # Flow triggers look for executions that ended since their last pass (0050).
    Index("ix_executions_updated", "updated"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "execution_id",
        String(32),
        ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("state", String(16), nullable=False),
    Column("document", Text, nullable=False),
    Index("ix_task_runs_execution", "execution_id", "id"),
)

logs = Table(
    "logs",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("execution_id", String(32), nullable=False),
    Column("taskrun_id", String(32), nullable=True),
    Column("task_id", String(255), nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Index("ix_logs_execution", "execution_id", "seq"),
)

metrics = Table(
    "metrics",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("execution_id", String(32), nullable=False),
    Column("taskrun_id", String(32), nullable=False),
    Column("task_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Float, nullable=False),
    Column("tags", Text, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Index("ix_metrics_execution", "execution_id", "seq"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)

kv = Table(
    "kv",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=True),
)

secret_reads = Table(
    "secret_reads",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("execution_id", String(32), nullable=True),
    Column("task_id", String(255), nullable=True),
    Column("namespace", String(255), nullable=False),
    Column("name", String(128), nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    UniqueConstraint("seq"),
)

# The hub server's API tokens: only a SHA-256 of each token is kept (0010).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("namespace", String(255), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("revoked", DateTime(timezone=True), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("namespace", String(255), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

#: Login sessions of people: only a SHA-256 of the session id (the cookie) and of its CSRF
#: token is stored, so the table alone logs nobody in. A password change or the user's
#: deletion deletes their rows (0030).
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("csrf_hash", String(64), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_expires", "expires"),
)

#: Webhook deliveries already turned into an execution (their sender's delivery id), so a
#: repeated delivery starts nothing; written in the transaction that creates the execution.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("flow_id", String(255), primary_key=True),
    Column("trigger_id", String(255), primary_key=True),
    Column("delivery_id", String(255), primary_key=True),
    Column("execution_id", String(32), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

#: The trigger loop's state per trigger: the next date it fires, when it was last evaluated,
#: its last error, whether someone disabled it. ``next_date`` moves in the transaction that
#: creates the execution of the tick, so a tick fires exactly once across restarts.
trigger_states = Table(
    "trigger_states",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("flow_id", String(255), primary_key=True),
    Column("trigger_id", String(255), primary_key=True),
    Column("type", String(255), nullable=False),
    Column("next_date", DateTime(timezone=True), nullable=True),
    Column("last_date", DateTime(timezone=True), nullable=True),
    Column("last_evaluation", DateTime(timezone=True), nullable=True),
    Column("last_execution_id", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    # A plugin trigger's durable state (JSON), written in the transaction of the execution its
    # evaluation creates; the executions it started whose end it waits to hear (JSON list);
    # a schedule's backfill (JSON: range, progress, paused). (0040)
    Column("state", Text, nullable=True),
    Column("watching", Text, nullable=True),
    Column("backfill", Text, nullable=True),
    # The lock an evaluation holds: who and until when; an expired lock is free, and
    # ``/unlock`` frees one whose owner died (0050).
    Column("locked_by", String(128), nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    # Why the trigger's conditions did not hold at its last evaluation (None: they did).
    Column("last_condition", Text, nullable=True),
)

#: Each ended execution a flow trigger handled, once (its primary key), with what it did:
#: ``started`` (``execution_id``), ``conditions`` (not met), ``depth`` (refused: chain too
#: deep) or ``error`` (the inputs did not fit). Inserted in the transaction that creates the
#: downstream execution, so an ended execution starts at most one per trigger. ``depth``
#: counts the flow triggers in the chain that led to ``execution_id``.
flow_trigger_events = Table(
    "flow_trigger_events",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("flow_id", String(255), primary_key=True),
    Column("trigger_id", String(255), primary_key=True),
    Column("upstream_id", String(32), primary_key=True),
    Column("upstream_attempt", Integer, primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("execution_id", String(32), nullable=True),
    Column("depth", Integer, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Index("ix_flow_trigger_events_execution", "execution_id"),
)

#: Kestra's namespace files: every version of each file, by namespace and path (relative to the
#: namespace's root, checked by ``plait.nsfiles.check_path``). The latest version is the file;
#: deleting a file deletes all its versions. Content is held in the database (LONGBLOB on
#: MariaDB, whose BLOB stops at 64 KiB) within ``PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES``.
namespace_files = Table(
    "namespace_files",
    metadata,
    Column("namespace", String(255), primary_key=True),
    # 255 + 400 characters keep the key under MariaDB's 3072-byte index limit in utf8mb4.
    Column("path", String(400), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)


#: One row (``id`` 1): a counter every change to ``api_tokens``, ``flows`` or a trigger's
#: ``disabled`` bumps in its own transaction (database triggers, migration 0090), read by the
#: server's caches (:meth:`plait.storage.SqlRepository.changes`).
plait_changes = Table(
    "plait_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
