"""Entry point of plait-db: registers the SQL task types and closes connection pools on shutdown."""

from __future__ import annotations

import sys
from pathlib import Path

from plait_sdk import RegisterBlueprint, RegisterTask, RegisterTrigger, hookimpl

from plait_db._batch import Batch
from plait_db._listen import Listen
from plait_db._tasks import Queries, Query
from plait_db._trigger import Trigger

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """``plait.db.Query``, ``plait.db.Queries`` and ``plait.db.Batch`` (and their Kestra JDBC
    aliases)."""
    register(Query)
    register(Queries)
    register(Batch)


@hookimpl
def register_triggers(register: RegisterTrigger) -> None:
    """``plait.db.Trigger`` (and its Kestra JDBC aliases), ``plait.db.postgresql.Listen``."""
    register(Trigger)
    register(Listen)


@hookimpl
def register_blueprints(register: RegisterBlueprint) -> None:
    """The blueprints about databases alone (package data: ``plait_db/blueprints/<id>/``);
    those that also need another connector stay in the core's library."""
    register(Path(__file__).parent / "blueprints")


@hookimpl
async def plait_shutdown() -> None:
    """Dispose of every pooled engine (closing their connections)."""
    engines = sys.modules.get("plait_db._engines")
    if engines is None:
        return  # no task of this process opened a database: skip importing SQLAlchemy's async half
    await engines.ENGINES.dispose_all()
