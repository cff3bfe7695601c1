"""plait-db: SQL queries on PostgreSQL, MySQL / MariaDB and SQLite for Plait flows.

Task types ``plait.db.Query`` (one statement) and ``plait.db.Queries`` (several, in one
transaction), also registered under Kestra's JDBC type names
(``io.kestra.plugin.jdbc.postgresql.Query``...).
"""

from plait_db._execute import FetchType
from plait_db._tasks import Queries, QueriesOutput, Query, QueryOutput, StatementOutput

__all__ = [
    "ENGINES",
    "EngineCache",
    "FetchType",
    "Queries",
    "QueriesOutput",
    "Query",
    "QueryOutput",
    "StatementOutput",
]


def __getattr__(name: str) -> object:
    # The engine cache needs sqlalchemy.ext.asyncio: loaded on first use, not at discovery.
    if name in ("ENGINES", "EngineCache"):
        from plait_db import _engines

        return getattr(_engines, name)
    raise AttributeError(name)
