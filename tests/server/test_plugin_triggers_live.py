"""The plugins' polling triggers in a live server (a subprocess) restarted between polls: their
durable state (``StatefulTrigger``) is stored with the executions they start, so a restart,
even ``kill -9``, neither starts an execution twice nor loses an object or a row.

- ``io.kestra.plugin.aws.s3.Trigger`` (``action: MOVE``) against moto's S3 server;
- ``io.kestra.plugin.jdbc.postgresql.Trigger`` / ``...mysql.Trigger`` with ``afterSQL``
  against the real PostgreSQL and MariaDB.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from blueprint_harness import S3, Database, maria, pg, s3
from live_server import LiveServer, call, start_server, wait_state

__all__ = ["maria", "pg", "s3"]  # the session fixtures this module uses


async def executions(live: LiveServer, namespace: str, flow_id: str) -> list[dict[str, Any]]:
    found = await call(
        live,
        "GET",
        "/executions/search",
        params={"namespace": namespace, "flowId": flow_id, "size": "500"},
    )
    return list(found["results"])


async def settle(live: LiveServer, namespace: str, flow_id: str) -> list[dict[str, Any]]:
    """The executions, once every one has ended."""
    found = await executions(live, namespace, flow_id)
    return [await wait_state(live, e["id"], "SUCCESS", "FAILED") for e in found]


async def until(predicate: Any, what: str, live: LiveServer) -> None:
    for _ in range(600):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}\n{live.log()[-3000:]}")


def keys(s3: S3, bucket: str) -> list[str]:
    """The bucket's keys (listing only: the trigger may delete one meanwhile)."""
    return sorted(o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket).get("Contents", []))


def restart(live: LiveServer) -> LiveServer:
    """Kill the server with -9 (no clean shutdown) and start it again on the same home."""
    live.stop(signal.SIGKILL)
    again = start_server(live.home)
    again.token = live.token
    return again


# -- S3 -----------------------------------------------------------------------------------------


async def test_s3_trigger_across_kill_9_moves_each_object_once(tmp_path: Path, s3: S3) -> None:
    bucket, archive = s3.bucket(), s3.bucket()
    for key in ("in/a.csv", "in/b.csv", "in/c.csv"):
        s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "watch.yaml").write_text(
        "id: watch\nnamespace: s3live\n"
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: \"{{ trigger.objects | map(attribute='key') | join(',') }}\"\n"
        "triggers:\n  - id: s3\n    type: io.kestra.plugin.aws.s3.Trigger\n"
        f"    interval: PT0.5S\n    endpointOverride: {s3.endpoint}\n    forcePathStyle: true\n"
        "    region: us-east-1\n"
        f"    bucket: {bucket}\n    prefix: in/\n    action: MOVE\n"
        f"    moveTo:\n      bucket: {archive}\n      key: done\n"
    )
    live = start_server(tmp_path / "home", "--deploy", str(flows))
    try:

        async def started() -> bool:
            return len(await executions(live, "s3live", "watch")) >= 1

        await until(started, "the trigger never started an execution", live)
        live = restart(live)  # the batch may or may not be completed yet: either way is fine
        for key in ("in/d.csv", "in/e.csv"):
            s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())

        async def all_moved() -> bool:
            moved = await asyncio.to_thread(keys, s3, archive)
            left = await asyncio.to_thread(keys, s3, bucket)
            return moved == [f"done/{n}.csv" for n in "abcde"] and not left

        await until(all_moved, "the objects were not all moved", live)
        live = restart(live)
        await asyncio.sleep(2)  # four intervals: a trigger that forgot would offer again
        ended = await settle(live, "s3live", "watch")
        handed = Counter(
            o["key"] for e in ended for o in e["trigger"]["variables"]["objects"]
        )  # fmt: skip
        assert handed == Counter({f"in/{n}.csv": 1 for n in "abcde"})
        assert {e["state"]["current"] for e in ended} == {"SUCCESS"}
        assert s3.objects(archive)["done/d.csv"] == b"in/d.csv"
        assert keys(s3, bucket) == []  # no state object either
        rows = await call(live, "GET", "/triggers", params={"namespace": "s3live"})
        assert rows["results"][0]["lastError"] is None
    finally:
        assert live.stop() == 0


# -- JDBC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["postgresql", "mariadb"])
async def test_jdbc_trigger_across_kill_9_hands_each_row_over_once(
    tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    db: Database = request.getfixturevalue("pg" if which == "postgresql" else "maria")
    table = db.table("queue")
    db.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, handled INT NOT NULL DEFAULT 0)")
    db.sql(f"INSERT INTO {table} (id) VALUES (1), (2), (3)")
    kestra = "postgresql" if which == "postgresql" else "mysql"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "rows.yaml").write_text(
        "id: rows\nnamespace: jdbclive\n"
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
        '    message: "{{ trigger.size }}"\n'
        f"triggers:\n  - id: poll\n    type: io.kestra.plugin.jdbc.{kestra}.Trigger\n"
        f"    interval: PT0.5S\n    url: {db.jdbc}\n    username: {db.user}\n"
        f"    sql: SELECT id FROM {table} WHERE handled = 0 ORDER BY id\n"
        f"    afterSQL: UPDATE {table} SET handled = 1 WHERE handled = 0\n"
        "    fetchType: FETCH\n"
    )
    live = start_server(tmp_path / "home", "--deploy", str(flows))
    try:

        async def started() -> bool:
            return len(await executions(live, "jdbclive", "rows")) >= 1

        await until(started, "the trigger never started an execution", live)
        live = restart(live)
        db.sql(f"INSERT INTO {table} (id) VALUES (4), (5)")

        async def all_handled() -> bool:
            left = await asyncio.to_thread(
                db.sql, f"SELECT count(*) FROM {table} WHERE handled = 0"
            )
            got = await executions(live, "jdbclive", "rows")
            ids = [
                r["id"] for e in got for r in (e.get("trigger") or {}).get("variables", {})["rows"]
            ]
            return left[0][0] == 0 and sorted(ids) == [1, 2, 3, 4, 5]

        await until(all_handled, "the rows were not all handed over", live)
        live = restart(live)
        await asyncio.sleep(2)  # four intervals
        ended = await settle(live, "jdbclive", "rows")
        handed = Counter(r["id"] for e in ended for r in e["trigger"]["variables"]["rows"])
        assert handed == Counter({i: 1 for i in range(1, 6)})
        assert {e["state"]["current"] for e in ended} == {"SUCCESS"}
    finally:
        assert live.stop() == 0
