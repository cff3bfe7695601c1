"""s3.load-to-postgres: files arriving in moto's S3 are handed over by the S3 trigger (the
server's trigger loop, in process), moved to loaded/ and inserted into a real PostgreSQL table
with Batch; a file with a bad row is rolled back whole and fails the execution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from blueprint_harness import S3, Database, Plait, task_run
from plait.blueprints import find, instantiate
from plait.flows import State
from plait.records import Execution
from plait.server._scheduler import Scheduler

NAMESPACE = "company.loads"
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def _secrets(plait: Plait, pg: Database) -> None:
    for name, value in {
        "LOAD_DB_URL": pg.jdbc, "LOAD_DB_USER": pg.user, "LOAD_DB_PASSWORD": "unused",
        "S3_ACCESS_KEY_ID": "AKIAPLAITTESTSDUMMY0", "S3_SECRET_KEY": "plait-tests-dummy-secret",
    }.items():  # fmt: skip
        await plait.store.set(NAMESPACE, name, value)


async def test_arriving_files_are_loaded_once(plait: Plait, s3: S3, pg: Database) -> None:
    table = pg.table("orders")
    pg.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, customer TEXT, total NUMERIC(8,2))")
    bucket = s3.bucket()
    s3.client.put_object(Bucket=bucket, Key="incoming/day1.csv",
                         Body=b"id,customer,total\n1,ada,9.50\n2,bo,20\n")  # fmt: skip
    lines = [{"id": 3, "customer": "cy", "total": 1.25}, {"id": 4, "customer": "di", "total": 7}]
    s3.client.put_object(Bucket=bucket, Key="incoming/day2.jsonl",
                         Body="".join(json.dumps(r) + "\n" for r in lines).encode())  # fmt: skip
    s3.client.put_object(Bucket=bucket, Key="incoming/readme.txt", Body=b"not loaded")
    await _secrets(plait, pg)
    text = instantiate(find(plait.runner.host.registry, "s3.load-to-postgres").blueprint,
                       NAMESPACE, "orders-loader")  # fmt: skip
    for old, new in (("defaults: incoming-bucket", f"defaults: {bucket}"),
                     ("bucket: incoming-bucket", f"bucket: {bucket}"),
                     ("defaults: imported_rows", f"defaults: {table}"),
                     ('endpointOverride: ""', f"endpointOverride: {s3.endpoint}"),
                     ('defaults: ""', f"defaults: {s3.endpoint}")):  # fmt: skip
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    await plait.runner.deploy(text, file="orders-loader.yaml")

    drives: list[asyncio.Task[Execution]] = []

    def spawn(coro: Coroutine[Any, Any, Execution], what: str) -> object:
        drives.append(asyncio.create_task(coro))
        return drives[-1]

    scheduler = Scheduler(plait.runner, plait.repo, spawn, clock=lambda: T0)
    try:
        await scheduler.evaluate(T0)
        await scheduler.poller.settle()
        [execution] = await asyncio.gather(*drives)
        # The next poll completes the move (the sources go) and starts nothing.
        await scheduler.evaluate(T0 + timedelta(minutes=1, seconds=1))
        await scheduler.poller.settle()
        assert len(drives) == 1
    finally:
        await scheduler.poller.close()
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"files": ["loaded/day1.csv", "loaded/day2.jsonl"], "rows": 4}
    rows = pg.sql(f"SELECT id, customer, total FROM {table} ORDER BY id")
    assert [(i, c, float(t)) for i, c, t in rows] == [
        (1, "ada", 9.5), (2, "bo", 20.0), (3, "cy", 1.25), (4, "di", 7.0),
    ]  # fmt: skip
    left = sorted(k for k in s3.objects(bucket) if not k.startswith(".plait/"))
    assert left == ["incoming/readme.txt", "loaded/day1.csv", "loaded/day2.jsonl"]


async def test_a_bad_file_is_rolled_back_whole(plait: Plait, s3: S3, pg: Database) -> None:
    table = pg.table("orders")
    pg.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, total NUMERIC(8,2) NOT NULL)")
    bucket = s3.bucket()
    s3.client.put_object(Bucket=bucket, Key="loaded/bad.csv",
                         Body=b"id,total\n1,5\n2,oops\n3,7\n")  # fmt: skip
    await _secrets(plait, pg)
    execution = await plait.blueprint(
        "s3.load-to-postgres",
        {"bucket": bucket, "keys": json.dumps(["loaded/bad.csv"]), "table": table,
         "columns": json.dumps(["id", "total"]), "chunk": 1, "s3_endpoint": s3.endpoint},
        NAMESPACE,
    )  # fmt: skip
    assert execution.state is State.FAILED
    assert "line 3" in (task_run(execution, "load").error or "")
    assert pg.sql(f"SELECT count(*) FROM {table}") == [(0,)]  # chunk 1, still all or nothing


async def test_no_file_loads_nothing(plait: Plait, s3: S3, pg: Database) -> None:
    await _secrets(plait, pg)
    execution = await plait.blueprint(
        "s3.load-to-postgres", {"bucket": s3.bucket(), "s3_endpoint": s3.endpoint}, NAMESPACE
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"files": [], "rows": 0}
