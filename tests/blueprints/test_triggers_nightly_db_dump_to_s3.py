"""triggers.nightly-db-dump-to-s3: the Schedule fires on a controlled clock (the server's
scheduler, in process); the dump of the real PostgreSQL table lands in moto's S3 under the
night's date, and dumps past the retention are deleted (others kept)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from blueprint_harness import S3, Database, Plait
from plait.blueprints import find, instantiate
from plait.flows import State
from plait.records import Execution
from plait.server._scheduler import Scheduler

T0 = datetime(2026, 3, 10, 2, 29, 58, tzinfo=UTC)


async def test_the_nightly_tick_dumps_and_expires(plait: Plait, pg: Database, s3: S3) -> None:
    table = pg.table("orders")
    pg.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, total NUMERIC(8,2))")
    pg.sql(f"INSERT INTO {table} VALUES (1, 9.50), (2, 20)")
    bucket = s3.bucket()
    for key in (
        f"dumps/{table}/2026-03-01.jsonl",
        f"dumps/{table}/2026-03-03.jsonl",
        f"dumps/{table}/2026-03-05.jsonl",
        "dumps/other/2026-01-01.jsonl",
    ):
        s3.client.put_object(Bucket=bucket, Key=key, Body=b"{}\n")  # fmt: skip
    for name, value in {
        "DUMP_DB_URL": pg.jdbc, "DUMP_DB_USER": pg.user, "DUMP_DB_PASSWORD": "unused",
        "DUMP_S3_ACCESS_KEY_ID": "AKIABLUEPRINTSDUMMY0",
        "DUMP_S3_SECRET_KEY": "blueprints-dummy-secret",
    }.items():  # fmt: skip
        await plait.store.set("company.ops", name, value)
    # What a user edits after `plait blueprints use`: the inputs' defaults.
    text = instantiate(find(plait.runner.host.registry, "triggers.nightly-db-dump-to-s3").blueprint,
                       "company.ops", "nightly-dump")  # fmt: skip
    for old, new in (("defaults: orders", f"defaults: {table}"),
                     ("defaults: backups", f"defaults: {bucket}"),
                     ("defaults: 14", "defaults: 7"),
                     ('defaults: ""', f"defaults: {s3.endpoint}")):  # fmt: skip
        assert old in text
        text = text.replace(old, new, 1)
    await plait.runner.deploy(text, file="nightly-dump.yaml")

    drives: list[asyncio.Task[Execution]] = []

    def spawn(coro: Coroutine[Any, Any, Execution], what: str) -> object:
        drives.append(asyncio.create_task(coro))
        return drives[-1]

    now = {"t": T0}
    scheduler = Scheduler(plait.runner, plait.repo, spawn, clock=lambda: now["t"])
    try:
        assert await scheduler.evaluate(T0) == []
        assert len(await scheduler.evaluate(T0 + timedelta(seconds=3))) == 1  # 02:30 fired
        assert await scheduler.evaluate(T0 + timedelta(seconds=30)) == []
        [execution] = await asyncio.gather(*drives)
    finally:
        await scheduler.poller.close()
    assert execution.state is State.SUCCESS, execution.error
    key = f"dumps/{table}/2026-03-10.jsonl"
    assert execution.outputs == {"key": key, "rows": 2, "expired": 1}
    objects = s3.objects(bucket)
    assert sorted(objects) == sorted(
        [
            "dumps/other/2026-01-01.jsonl",  # another table's: untouched
            f"dumps/{table}/2026-03-03.jsonl",  # exactly 7 days before: kept
            f"dumps/{table}/2026-03-05.jsonl",
            key,
        ]
    )
    rows = [json.loads(line) for line in objects[key].decode().splitlines()]
    assert sorted((r["id"], float(r["total"])) for r in rows) == [(1, 9.5), (2, 20.0)]
