"""Durable trigger state and realtime triggers in a live server (a subprocess):

- ``plait.http.Trigger``'s ``stopAfter`` lives in the trigger's durable state: after the
  server is killed with -9 and started again, the stopped trigger starts nothing more;
- ``plait.db.postgresql.Listen`` (a realtime trigger) against the real PostgreSQL: one
  execution per NOTIFY with ``trigger.*``; a failing listener shows its last error in
  /api/v1/triggers and is retried; deleting the flow stops the listener (its connection is
  closed), and so does stopping the server.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from backends import PG_DSN
from ci_switch import service_missing
from live_server import LiveServer, call, start_server, wait_state


async def executions(live: LiveServer, namespace: str, flow_id: str) -> list[dict[str, Any]]:
    found = await call(
        live,
        "GET",
        "/executions/search",
        params={"namespace": namespace, "flowId": flow_id, "size": "500"},
    )
    return list(found["results"])


async def wait_count(live: LiveServer, namespace: str, flow_id: str, count: int) -> None:
    for _ in range(600):
        if len(await executions(live, namespace, flow_id)) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} executions of {flow_id}")


async def trigger_row(live: LiveServer, namespace: str, trigger_id: str) -> dict[str, Any]:
    found = await call(live, "GET", "/triggers", params={"namespace": namespace})
    return next(t for t in found["results"] if t["triggerId"] == trigger_id)


# -- durable state: stopAfter across kill -9 ---------------------------------------------------


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, list[int]]]:
    hits: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response({"n": len(hits)})

    app = web.Application()
    app.router.add_get("/ok", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/ok", hits
    await runner.cleanup()


async def test_stop_after_is_durable_across_kill_9(
    tmp_path: Path, endpoint: tuple[str, list[int]]
) -> None:
    url, hits = endpoint
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "poll.yaml").write_text(
        "id: poll\nnamespace: durable\n"
        'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.body.n }}"\n'
        "triggers:\n  - id: http\n    type: plait.http.Trigger\n"
        f"    uri: {url}\n    interval: PT1S\n    stopAfter: [SUCCESS]\n"
    )
    home = tmp_path / "home"
    live = start_server(home, "--deploy", str(flows))
    token = live.token
    try:
        await wait_count(live, "durable", "poll", 1)
        first = (await executions(live, "durable", "poll"))[-1]
        await wait_state(live, first["id"], "SUCCESS")
        # The next evaluation hears of the SUCCESS and stops (stored with the state); it may
        # have started a second execution before the first one ended.
        for _ in range(100):
            polled = len(hits)
            await asyncio.sleep(1.5)
            if len(hits) == polled:
                break
        else:
            raise AssertionError("the trigger never stopped polling")
        before = await executions(live, "durable", "poll")
    finally:
        live.stop(signal.SIGKILL)
    stopped_at = len(hits)
    live = start_server(home)
    live.token = token
    try:
        await asyncio.sleep(3)  # three intervals: a trigger that forgot would have polled
        assert len(hits) == stopped_at
        assert len(await executions(live, "durable", "poll")) == len(before)
        row = await trigger_row(live, "durable", "http")
        assert row["lastError"] is None
    finally:
        assert live.stop() == 0


# -- realtime: PostgreSQL LISTEN/NOTIFY ---------------------------------------------------------


def _pg_url() -> str:
    dsn = dict(part.split("=", 1) for part in PG_DSN.split())
    return (
        f"jdbc:postgresql://{dsn.get('host', '127.0.0.1')}:{dsn.get('port', '5432')}/"
        f"{dsn.get('dbname', 'test')}?user={dsn.get('user', 'postgres')}"
    )


def _notify(channel: str, payload: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _listening(channel: str) -> int:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s", (f"LISTEN%{channel}%",)
        ).fetchone()
        return int(row[0]) if row else 0


async def _until(predicate: Any, what: str) -> None:
    for _ in range(300):
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(what)


async def test_listen_notify_realtime_trigger(tmp_path: Path) -> None:
    try:
        await asyncio.to_thread(_listening, "x")
    except Exception as error:
        service_missing(f"PostgreSQL is not reachable ({PG_DSN}): {error}")
    channel = "plait_" + uuid.uuid4().hex[:12]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "listen.yaml").write_text(
        "id: listen\nnamespace: realtime\n"
        "tasks:\n  - id: log\n    type: plait.core.Log\n"
        '    message: "{{ trigger.channel }} {{ trigger.payload.n }}"\n'
        "triggers:\n"
        f"  - id: pg\n    type: plait.db.postgresql.Listen\n    url: {_pg_url()}\n"
        f"    channel: {channel}\n"
        # Nothing listens on port 1: the listener fails, is shown and retried.
        "  - id: broken\n    type: plait.db.postgresql.Listen\n"
        "    url: jdbc:postgresql://127.0.0.1:1/test?user=postgres\n    channel: nowhere\n"
    )
    live = start_server(tmp_path / "home", "--deploy", str(flows))
    try:
        await _until(lambda: _listening(channel) == 1, "never listened:\n" + live.log())
        for n in range(3):
            await asyncio.to_thread(_notify, channel, json.dumps({"n": n}))
        await wait_count(live, "realtime", "listen", 3)
        got = []
        for execution in await executions(live, "realtime", "listen"):
            await wait_state(live, execution["id"], "SUCCESS")
            logs = await call(live, "GET", f"/logs/{execution['id']}")
            got.append(logs[0]["message"])
        assert sorted(got) == [f"{channel} {n}" for n in range(3)]
        assert len(await executions(live, "realtime", "listen")) == 3  # one per event

        broken = await trigger_row(live, "realtime", "broken")
        for _ in range(100):
            if broken["lastError"]:
                break
            await asyncio.sleep(0.1)
            broken = await trigger_row(live, "realtime", "broken")
        error = broken["lastError"] or ""
        assert "Connect" in error or "OSError" in error, broken
        assert "Traceback" not in error

        # Deleting the flow stops its listener: the connection is closed.
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{live.api}/flows/realtime/listen", headers=live.headers()) as response,
        ):
            assert response.status in (200, 204), await response.text()
        await _until(lambda: _listening(channel) == 0, "the listener outlived its flow")
        await asyncio.to_thread(_notify, channel, json.dumps({"n": 9}))
    finally:
        assert live.stop() == 0


def _rename(database: Path, old: str, new: str) -> None:
    import sqlite3

    conn = sqlite3.connect(database, timeout=30)
    try:
        conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
        conn.commit()
    finally:
        conn.close()


async def test_a_realtime_event_waits_out_a_database_failure(tmp_path: Path) -> None:
    """The executions table vanishes (renamed by hand) while events arrive: each event is held
    and retried, shown as the trigger's last error, and starts its execution exactly once when
    the table is back; no event is lost."""
    try:
        await asyncio.to_thread(_listening, "x")
    except Exception as error:
        service_missing(f"PostgreSQL is not reachable ({PG_DSN}): {error}")
    channel = "plait_" + uuid.uuid4().hex[:12]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "held.yaml").write_text(
        "id: held\nnamespace: realtime\n"
        'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.payload.n }}"\n'
        f"triggers:\n  - id: pg\n    type: plait.db.postgresql.Listen\n    url: {_pg_url()}\n"
        f"    channel: {channel}\n"
    )
    home = tmp_path / "home"
    live = start_server(home, "--deploy", str(flows))
    try:
        await _until(lambda: _listening(channel) == 1, "never listened:\n" + live.log())
        await asyncio.to_thread(_notify, channel, json.dumps({"n": 0}))
        await wait_count(live, "realtime", "held", 1)
        first = (await executions(live, "realtime", "held"))[0]
        await wait_state(live, first["id"], "SUCCESS")

        await asyncio.to_thread(_rename, home / "plait.db", "executions", "executions_away")
        try:
            await asyncio.to_thread(_notify, channel, json.dumps({"n": 1}))
            await asyncio.to_thread(_notify, channel, json.dumps({"n": 2}))
            row = await trigger_row(live, "realtime", "pg")
            for _ in range(300):
                if row["lastError"]:
                    break
                await asyncio.sleep(0.05)
                row = await trigger_row(live, "realtime", "pg")
            assert "executions" in (row["lastError"] or ""), row
        finally:
            await asyncio.to_thread(_rename, home / "plait.db", "executions_away", "executions")

        await wait_count(live, "realtime", "held", 3)
        got = []
        for execution in await executions(live, "realtime", "held"):
            await wait_state(live, execution["id"], "SUCCESS")
            logs = await call(live, "GET", f"/logs/{execution['id']}")
            got.append(logs[0]["message"])
        assert sorted(got) == ["0", "1", "2"]  # each event once, none lost
        assert (await trigger_row(live, "realtime", "pg"))["lastError"] is None
    finally:
        assert live.stop() == 0


# -- schedule backfill through the API ----------------------------------------------------------


async def test_backfill_through_the_api_and_the_cli(tmp_path: Path) -> None:
    import subprocess

    from live_server import PLAIT

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "yearly.yaml").write_text(
        "id: yearly\nnamespace: backfill\n"
        'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.date }}"\n'
        'triggers:\n  - id: cron\n    type: plait.core.Schedule\n    cron: "0 0 1 1 *"\n'
    )
    live = start_server(tmp_path / "home", "--deploy", str(flows))
    path = "/triggers/backfill/yearly/cron/backfill"
    try:
        for _ in range(100):  # the loop's first pass makes the trigger's row
            if (await trigger_row(live, "backfill", "cron"))["nextDate"]:
                break
            await asyncio.sleep(0.1)
        await call(live, "POST", path + "/pause", expect=409)  # none under way
        shown = await call(
            live,
            "POST",
            path,
            json={"start": "2020-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z",
                  "concurrency": 2, "paused": True},
        )  # fmt: skip
        assert shown["backfill"]["total"] == 5
        assert shown["backfill"]["paused"] is True
        await call(live, "POST", path, json={"start": "2021-01-01T00:00:00Z"}, expect=409)
        await asyncio.sleep(1.5)
        assert await executions(live, "backfill", "yearly") == []  # paused: nothing started
        await call(live, "POST", path + "/unpause")
        await wait_count(live, "backfill", "yearly", 5)
        for _ in range(200):
            backfill = (await trigger_row(live, "backfill", "cron"))["backfill"]
            if backfill["finished"]:
                break
            await asyncio.sleep(0.1)
        assert (backfill["done"], backfill["total"], backfill["running"]) == (5, 5, 0)
        dates = []
        for execution in await executions(live, "backfill", "yearly"):
            assert {"key": "backfill", "value": "true"} in execution["labels"]
            await wait_state(live, execution["id"], "SUCCESS")
            logs = await call(live, "GET", f"/logs/{execution['id']}")
            dates.append(logs[0]["message"])
        assert sorted(dates) == [f"{y}-01-01T00:00:00+00:00" for y in range(2020, 2025)]
        await call(live, "DELETE", path, expect=409)  # finished: nothing to cancel
        listed = await asyncio.to_thread(
            subprocess.run,
            [str(PLAIT), "triggers", "list", "--server", live.url, "-n", "backfill"],
            capture_output=True, text=True, check=True, timeout=60,
            env={"PLAIT_TOKEN": live.token or "", "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        )  # fmt: skip
        assert "5/5 done" in listed.stdout
        # A wrong body is one clear message, no traceback.
        bad = await call(live, "POST", path, json={"start": "yesterday"}, expect=422)
        assert "start" in json.dumps(bad)
    finally:
        assert live.stop() == 0
