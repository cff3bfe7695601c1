"""plait.db.Trigger: its poll (``evaluate``) called directly against the real databases."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plait_db.plugin
import pytest
from plait.flows import load_flow
from plait.plugins import PluginHost
from plait_db import Trigger
from plait_sdk import ExecutionRequest, PollingTrigger, TaskFailure, UserError
from plait_sdk.testing import HarnessContext

from .conftest import Db, make_context

SECRETS = {"DB_PASSWORD": "trig-S3cret:pw/%"}


@pytest.fixture
def rctx(tmp_path: Path) -> HarnessContext:
    """Renders ``{{ secret('NAME') }}`` with the core's engine, as the server does."""
    return make_context(tmp_path, "poll", secrets=SECRETS)


async def orders(db: Db) -> str:
    table = db.table("orders")
    await db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer VARCHAR(20), "
        "total NUMERIC(8, 2), handled INTEGER NOT NULL DEFAULT 0)"
    )
    return table


def trigger(db: Db, table: str, **props: Any) -> Trigger:
    spec = {
        "url": db.url,
        "sql": f"SELECT id, customer, total FROM {table} WHERE handled = 0 ORDER BY id",
        "afterSQL": f"UPDATE {table} SET handled = 1 WHERE handled = 0",
        "interval": "PT30S",
        **props,
    }
    return Trigger.model_validate(spec)


@pytest.mark.services
async def test_rows_start_an_execution_once_on_postgres(pg: Db, rctx: HarnessContext) -> None:
    table = await orders(pg)
    poll = trigger(pg, table, username="postgres", password="{{ secret('DB_PASSWORD') }}")
    assert isinstance(poll, PollingTrigger)
    assert poll.interval.total_seconds() == 30

    assert await poll.evaluate(rctx) is None  # no row yet

    await pg.execute(
        f"INSERT INTO {table} (id, customer, total) VALUES (1, 'Ada', 12.5), (2, 'Bob', 7)"
    )
    request = await poll.evaluate(rctx)
    assert isinstance(request, ExecutionRequest)
    assert request.variables == {
        "rows": [
            {"id": 1, "customer": "Ada", "total": "12.50"},
            {"id": 2, "customer": "Bob", "total": "7.00"},
        ],
        "size": 2,
    }
    # afterSQL ran in the query's transaction, which commits once the server has stored the
    # execution (settle): until then the rows are not marked.
    assert await pg.rows(f"SELECT count(*) FROM {table} WHERE handled = 1") == [(0,)]
    await poll.settle(rctx, True)
    assert await pg.rows(f"SELECT count(*) FROM {table} WHERE handled = 1") == [(2,)]
    assert await poll.evaluate(rctx) is None

    await pg.execute(f"INSERT INTO {table} (id, customer, total) VALUES (3, 'Cy', 1)")
    again = await poll.evaluate(rctx)
    assert again is not None
    assert again.variables["size"] == 1
    # The password came from the rendered template, and is masked.
    assert SECRETS["DB_PASSWORD"] in rctx.masker.values
    assert SECRETS["DB_PASSWORD"] not in rctx.log_text


@pytest.mark.services
async def test_fetch_one_and_store_on_postgres(pg: Db, rctx: HarnessContext) -> None:
    table = await orders(pg)
    await pg.execute(
        f"INSERT INTO {table} (id, customer, total) VALUES (1, 'Ada', 12.5), (2, 'Bob', 7)"
    )
    one = await trigger(pg, table, fetchType="FETCH_ONE", afterSQL=None).evaluate(rctx)
    assert one is not None
    assert one.variables == {"row": {"id": 1, "customer": "Ada", "total": "12.50"}, "size": 1}

    store = trigger(pg, table, fetchType="STORE")
    stored = await store.evaluate(rctx)
    assert stored is not None
    assert stored.variables["size"] == 2
    body = await rctx.storage.read_bytes(stored.variables["uri"])
    assert [json.loads(line)["id"] for line in body.splitlines()] == [1, 2]
    # A caller that never settles: the next evaluation takes the request as accepted.
    assert await store.evaluate(rctx) is None


@pytest.mark.services
async def test_rows_whose_execution_was_not_stored_are_offered_again(
    pg: Db, rctx: HarnessContext
) -> None:
    table = await orders(pg)
    await pg.execute(f"INSERT INTO {table} (id, customer, total) VALUES (1, 'Ada', 1)")
    poll = trigger(pg, table, username="postgres", password="{{ secret('DB_PASSWORD') }}")
    first = await poll.evaluate(rctx)
    assert first is not None
    await poll.settle(rctx, False)  # storing the execution failed: afterSQL rolled back
    assert await pg.rows(f"SELECT count(*) FROM {table} WHERE handled = 0") == [(1,)]
    assert "afterSQL rolled back" in rctx.log_text
    again = await poll.evaluate(rctx)
    assert again is not None
    assert again.variables == first.variables
    await poll.settle(rctx, True)
    await poll.settle(rctx, True)  # at most once per request: nothing more
    assert await pg.rows(f"SELECT count(*) FROM {table} WHERE handled = 0") == [(0,)]
    assert await poll.evaluate(rctx) is None


async def test_other_databases(db: Db, rctx: HarnessContext) -> None:
    table = await orders(db)
    poll = trigger(db, table)
    assert await poll.evaluate(rctx) is None
    await db.execute(f"INSERT INTO {table} (id, customer, total) VALUES (5, 'Eve', 3)")
    request = await poll.evaluate(rctx)
    assert request is not None
    assert request.variables["size"] == 1
    assert request.variables["rows"][0]["customer"] == "Eve"
    assert await poll.evaluate(rctx) is None


@pytest.mark.services
async def test_a_failing_query_fails_the_poll_cleanly(pg: Db, rctx: HarnessContext) -> None:
    poll = Trigger.model_validate(
        {
            "url": pg.url,
            "password": "{{ secret('DB_PASSWORD') }}",
            "sql": "SELECT * FROM plait_no_such_table",
        }
    )
    with pytest.raises(TaskFailure, match=r'relation "plait_no_such_table" does not exist'):
        await poll.evaluate(rctx)


def test_validation() -> None:
    with pytest.raises(ValueError, match="NONE gives the trigger no rows"):
        Trigger.model_validate(
            {"url": "jdbc:sqlite::memory:", "sql": "SELECT 1", "fetchType": "none"}
        )
    with pytest.raises(ValueError, match="unknown time zone"):
        Trigger.model_validate(
            {"url": "jdbc:sqlite::memory:", "sql": "SELECT 1", "timeZoneId": "Mars/Base"}
        )
    poll = Trigger.model_validate({"url": "jdbc:sqlite::memory:", "sql": "SELECT 1"})
    assert poll.interval.total_seconds() == 60
    assert poll.fetch_type.value == "FETCH"


async def test_a_bad_rendered_value_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(tmp_path, "poll")

    async def bad(value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return {**value, "fetchSize": "many"}

    monkeypatch.setattr(ctx, "render", bad)  # a template that rendered to a non-number
    poll = Trigger.model_validate({"url": "jdbc:sqlite::memory:", "sql": "SELECT 1"})
    with pytest.raises(UserError, match=r"plait.db.Trigger: fetchSize: "):
        await poll.evaluate(ctx)


def test_kestra_flows_with_the_trigger_validate() -> None:
    host = PluginHost.discover(entry_points=False, extra=[plait_db.plugin])
    for alias in Trigger.aliases:
        flow = load_flow(
            f"""
id: jdbc_trigger
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ trigger.rows }}}}"
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ taskrun.value }}}}"
triggers:
  - id: watch
    type: {alias}
    url: jdbc:postgresql://127.0.0.1:56982/
    username: pg_user
    password: "{{{{ secret('PG_PASSWORD') }}}}"
    sql: "SELECT * FROM my_table"
    interval: PT5M
    fetchType: FETCH
""",
            registry=host.registry,
        )
        assert flow.triggers[0].type == "plait.db.Trigger"


@pytest.mark.services
async def test_rows_of_a_stored_execution_whose_commit_was_lost_are_not_offered_again(
    pg: Db, rctx: HarnessContext
) -> None:
    """The server stored the execution (with the trigger's state) and stopped before afterSQL
    committed: the database rolled back, the rows come back, and are marked, not offered."""
    table = await orders(pg)
    await pg.execute(
        f"INSERT INTO {table} (id, customer, total) VALUES (1, 'Ada', 1), (2, 'Bo', 2)"
    )
    props = {"username": "postgres", "password": "{{ secret('DB_PASSWORD') }}"}
    first = trigger(pg, table, **props)
    handed = await first.evaluate(rctx)
    assert handed is not None
    stored = first.dump_state()  # what the server stored with the execution
    assert len(stored["pending"]) == 2
    await first.settle(rctx, False)  # stands for the connection dropped with the process
    await pg.execute(f"INSERT INTO {table} (id, customer, total) VALUES (3, 'Cy', 3)")

    restarted = trigger(pg, table, **props)
    restarted.load_state(stored)
    again = await restarted.evaluate(rctx)
    assert again is not None
    assert again.variables == {"rows": [{"id": 3, "customer": "Cy", "total": "3.00"}], "size": 1}
    assert "2 row(s) already handed to an execution" in rctx.log_text
    await restarted.settle(rctx, True)
    assert restarted.dump_state() == {"pending": []}
    assert await pg.rows(f"SELECT count(*) FROM {table} WHERE handled = 0") == [(0,)]

    # Only those rows: the same content coming back after a confirmed commit is new.
    await pg.execute(f"UPDATE {table} SET handled = 0 WHERE id = 3")
    assert await restarted.evaluate(rctx) is not None
