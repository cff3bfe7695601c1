"""SQL persistence: the repository of executions on SQLite, PostgreSQL or MySQL/MariaDB, its
schema and migrations.

The tables are public: the server, the secrets store and the key-value store keep their own
state in them (trigger state, webhook deliveries, users, tokens, secrets, KV entries) with their
own queries. Files passed between tasks are in plait.files, not here.
"""

from plait.storage._cache import ChangeCache
from plait.storage._migrate import HEAD as SCHEMA_HEAD
from plait.storage._migrate import current_revision, upgrade_apart
from plait.storage._sql import FlowConflict, SqlRepository, execution_row
from plait.storage._tables import (
    api_tokens,
    executions,
    flow_trigger_events,
    flows,
    kv,
    logs,
    metadata,
    metrics,
    namespace_files,
    plait_changes,
    secret_reads,
    secrets,
    sessions,
    task_runs,
    trigger_states,
    users,
    webhook_deliveries,
)

__all__ = [
    "SCHEMA_HEAD",
    "ChangeCache",
    "FlowConflict",
    "SqlRepository",
    "api_tokens",
    "current_revision",
    "execution_row",
    "executions",
    "flow_trigger_events",
    "flows",
    "kv",
    "logs",
    "metadata",
    "metrics",
    "namespace_files",
    "plait_changes",
    "secret_reads",
    "secrets",
    "sessions",
    "task_runs",
    "trigger_states",
    "upgrade_apart",
    "users",
    "webhook_deliveries",
]
