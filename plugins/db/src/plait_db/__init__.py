"""plait-db: SQL queries on PostgreSQL, MySQL / MariaDB and SQLite for Plait flows.

Task types ``plait.db.Query`` (one statement), ``plait.db.Queries`` (several, in one
transaction) and ``plait.db.Batch`` (bulk-insert a file's rows), the polling trigger
``plait.db.Trigger``, also registered under Kestra's JDBC type names
(``io.kestra.plugin.jdbc.postgresql.Query``...), and the realtime trigger
``plait.db.postgresql.Listen`` (one execution per PostgreSQL ``NOTIFY``).
"""

from plait_db._batch import Batch, BatchOutput
from plait_db._execute import FetchType
from plait_db._files import FileFormat
from plait_db._listen import Listen
from plait_db._tasks import Queries, QueriesOutput, Query, QueryOutput, StatementOutput
from plait_db._trigger import Trigger

__all__ = [
    "ENGINES",
    "Batch",
    "BatchOutput",
    "EngineCache",
    "FetchType",
    "FileFormat",
    "Listen",
    "Queries",
    "QueriesOutput",
    "Query",
    "QueryOutput",
    "StatementOutput",
    "Trigger",
]


def __getattr__(name: str) -> object:
    # The engine cache needs sqlalchemy.ext.asyncio: loaded on first use, not at discovery.
    if name in ("ENGINES", "EngineCache"):
        from plait_db import _engines

        return getattr(_engines, name)
    raise AttributeError(name)
