"""Connection pooling: one engine per URL + credentials, nothing leaked, killed queries stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import plait_db.plugin
import pytest
from plait_db import ENGINES, Query
from plait_db._urls import resolve
from plait_sdk.testing import HarnessContext

from .conftest import Db


async def query(ctx: HarnessContext, **properties: Any) -> Any:
    return await Query.model_validate(properties).run(ctx)


async def test_one_engine_per_url_and_credentials(db: Db, ctx: HarnessContext) -> None:
    for _ in range(3):
        await query(ctx, url=db.url, sql="SELECT 1")
    await query(ctx, url=db.jdbc, sql="SELECT 1")  # the same database, written differently
    assert len(ENGINES) == 1
    if db.dialect == "postgresql":  # trust auth: another password is another pool
        await query(ctx, url=db.url, password="other-credentials", sql="SELECT 1")
        assert len(ENGINES) == 2
    engine = ENGINES.get(resolve(db.url))
    assert engine.pool.checkedout() == 0  # every connection went back to the pool
    await ENGINES.dispose_all()
    assert len(ENGINES) == 0


async def test_concurrent_tasks_share_a_bounded_pool(db: Db, ctx: HarnessContext) -> None:
    sql = {"postgresql": "SELECT pg_sleep(0.05)", "mysql": "SELECT SLEEP(0.05)"}.get(
        db.dialect, "SELECT 1"
    )
    await asyncio.gather(*(query(ctx, url=db.url, sql=sql) for _ in range(25)))
    engine = ENGINES.get(resolve(db.url))
    assert engine.pool.checkedout() == 0
    assert len(ENGINES) == 1


async def test_shutdown_hook_disposes_every_engine(db: Db, ctx: HarnessContext) -> None:
    await query(ctx, url=db.url, sql="SELECT 1")
    assert len(ENGINES) == 1
    await plait_db.plugin.plait_shutdown()
    assert len(ENGINES) == 0


async def test_private_sqlite_engines_are_not_cached(ctx: HarnessContext) -> None:
    await query(ctx, url="jdbc:sqlite::memory:", sql="SELECT 1")
    await query(ctx, url="jdbc:sqlite:x.db", sql="SELECT 1", outputDbFile=True)
    assert len(ENGINES) == 0


SLEEP = {
    "postgresql": (
        "SELECT pg_sleep(5)",
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'",
    ),
    "mysql": (
        "SELECT SLEEP(5)",
        "SELECT count(*) AS n FROM information_schema.processlist WHERE info = 'SELECT SLEEP(5)'",
    ),
}


@pytest.mark.parametrize("fetch_type", ["NONE", "STORE"])
async def test_a_killed_query_stops_on_the_server(
    server: Db, ctx: HarnessContext, fetch_type: str
) -> None:
    db = server
    sleep, probe = SLEEP[db.dialect]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(query(ctx, url=db.url, sql=sleep, fetchType=fetch_type), 0.5)
    assert time.monotonic() - started < 3
    engine = ENGINES.get(resolve(db.url))
    assert engine.pool.checkedout() == 0
    for _ in range(20):  # the server notices within moments
        running = await query(ctx, url=db.url, sql=probe, fetchType="FETCH_ONE")
        if running.row == {"n": 0}:
            break
        await asyncio.sleep(0.1)
    assert running.row == {"n": 0}
    # The pool still works.
    assert (await query(ctx, url=db.url, sql="SELECT 2 AS two", fetchType="FETCH_ONE")).row == {
        "two": 2
    }
