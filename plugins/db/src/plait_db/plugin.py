"""Entry point of plait-db: registers the SQL task types and closes connection pools on shutdown."""

from __future__ import annotations

from plait_sdk import RegisterTask, hookimpl

from plait_db._tasks import Queries, Query

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """``plait.db.Query`` and ``plait.db.Queries`` (and their Kestra JDBC aliases)."""
    register(Query)
    register(Queries)


@hookimpl
async def plait_shutdown() -> None:
    """Dispose of every pooled engine (closing their connections)."""
    from plait_db._engines import ENGINES

    await ENGINES.dispose_all()
