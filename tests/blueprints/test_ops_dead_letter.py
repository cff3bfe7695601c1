"""ops.dead-letter: its Flow trigger (the server's trigger loop, in process) reacts to failed
executions of the watched namespaces only; each becomes a row of a real PostgreSQL table and a
notification on a loopback webhook, with the count of that flow's recent failures."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from blueprint_harness import Database, Plait, Saas
from plait.blueprints import find, instantiate
from plait.flows import State
from plait.records import Execution
from plait.server._scheduler import Scheduler

FAILING = """
id: nightly
namespace: {namespace}
tasks:
  - id: extract
    type: plait.core.Log
    message: starting
  - id: load
    type: plait.core.Fail
    errorMessage: disk full
"""
FINE = """
id: fine
namespace: company.shop
tasks:
  - id: ok
    type: plait.core.Log
    message: ok
"""


async def test_failed_executions_are_recorded_and_announced(
    plait: Plait, saas: Saas, pg: Database
) -> None:
    hook = saas.mount({"/hook": {"ok": True}})
    table = pg.table("dead_letters")
    for name, value in {
        "DLQ_DB_URL": pg.jdbc, "DLQ_DB_USER": pg.user, "DLQ_DB_PASSWORD": "unused",
        "DLQ_WEBHOOK_URL": hook.url("/hook"),
    }.items():  # fmt: skip
        await plait.store.set("company.ops", name, value)
    text = instantiate(find(plait.runner.host.registry, "ops.dead-letter").blueprint,
                       "company.ops", "dead-letter")  # fmt: skip
    assert text.count("defaults: dead_letters") == 1
    await plait.runner.deploy(text.replace("defaults: dead_letters", f"defaults: {table}"),
                              file="dead-letter.yaml")  # fmt: skip

    drives: list[asyncio.Task[Execution]] = []

    def spawn(coro: Coroutine[Any, Any, Execution], what: str) -> object:
        drives.append(asyncio.create_task(coro))
        return drives[-1]

    scheduler = Scheduler(plait.runner, plait.repo, spawn)
    try:
        await scheduler.evaluate(datetime.now(UTC))  # the trigger's first pass: from now on
        first = await plait.flow(FAILING.format(namespace="company.shop"))
        ignored = await plait.flow(FAILING.format(namespace="other.team"))
        fine = await plait.flow(FINE)
        assert (first.state, ignored.state, fine.state) == (
            State.FAILED, State.FAILED, State.SUCCESS,
        )  # fmt: skip
        await scheduler.evaluate(datetime.now(UTC))
        [recorded] = await asyncio.gather(*drives)
        second = await plait.flow(FAILING.format(namespace="company.shop"))
        await scheduler.evaluate(datetime.now(UTC))
        again = (await asyncio.gather(*drives))[1:]
        await scheduler.evaluate(datetime.now(UTC))  # nothing new: nothing started
        assert len(drives) == 2
    finally:
        await scheduler.poller.close()
    assert recorded.state is State.SUCCESS, recorded.error
    assert recorded.outputs == {"recorded": True, "failures_24h": 1}
    [dead_letter] = again
    assert dead_letter.state is State.SUCCESS, dead_letter.error
    assert dead_letter.outputs == {"recorded": True, "failures_24h": 2}
    rows = pg.sql(f"SELECT execution_id, namespace, flow_id, state, failed_task FROM {table}"
                  " ORDER BY recorded_at")  # fmt: skip
    assert rows == [
        (first.id, "company.shop", "nightly", "FAILED", "load"),
        (second.id, "company.shop", "nightly", "FAILED", "load"),
    ]
    texts = [c.json()["text"] for c in hook.calls("/hook")]
    assert texts == [
        f"company.shop.nightly ended FAILED at load (1 failure(s) in 24 h); recorded in {table}",
        f"company.shop.nightly ended FAILED at load (2 failure(s) in 24 h); recorded in {table}",
    ]
    assert [c.json()["execution"] for c in hook.calls("/hook")] == [first.id, second.id]


async def test_a_second_record_of_one_execution_is_not_doubled(
    plait: Plait, saas: Saas, pg: Database
) -> None:
    hook = saas.mount({"/hook": {"ok": True}})
    table = pg.table("dead_letters")
    for name, value in {
        "DLQ_DB_URL": pg.jdbc, "DLQ_DB_USER": pg.user, "DLQ_DB_PASSWORD": "unused",
        "DLQ_WEBHOOK_URL": hook.url("/hook"),
    }.items():  # fmt: skip
        await plait.store.set("company.team", name, value)
    inputs = {"execution_id": "ex-1", "namespace": "company.shop", "flow_id": "sync",
              "state": "KILLED", "table": table}  # fmt: skip
    first = await plait.blueprint("ops.dead-letter", inputs)
    repeat = await plait.blueprint("ops.dead-letter", inputs)
    assert (first.state, repeat.state) == (State.SUCCESS, State.SUCCESS)
    assert (first.outputs["recorded"], repeat.outputs["recorded"]) == (True, False)
    assert pg.sql(f"SELECT state, failed_task FROM {table}") == [("KILLED", None)]
    [call] = hook.calls("/hook")  # announced once
    assert call.json()["text"].startswith("company.shop.sync ended KILLED (1 failure(s) in 24 h)")
