"""s3.process-new-objects: the S3 trigger (evaluated by the server's trigger loop, in process)
hands the new CSV files of moto's S3 over once, moved to archive/; each is summarised by a
real Python subprocess and the summaries land in S3. Called with keys, it processes those."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from blueprint_harness import S3, Plait
from plait.blueprints import find, instantiate
from plait.flows import State
from plait.records import Execution
from plait.server._scheduler import Scheduler

NAMESPACE = "company.files"
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def _credentials(plait: Plait) -> None:
    await plait.store.set(NAMESPACE, "S3_ACCESS_KEY_ID", "AKIAPLAITTESTSDUMMY0")
    await plait.store.set(NAMESPACE, "S3_SECRET_KEY", "plait-tests-dummy-secret")


async def test_new_objects_are_moved_and_processed_once(plait: Plait, s3: S3) -> None:
    bucket = s3.bucket()
    files = {"incoming/a.csv": b"id,amount\n1,2.5\n2,4\n", "incoming/b.csv": b"id,amount\n3,10\n",
             "incoming/c.csv": b"id,note\n4,x\n5,y\n6,z\n"}  # fmt: skip
    for key, body in files.items():
        s3.client.put_object(Bucket=bucket, Key=key, Body=body)
    await _credentials(plait)
    text = instantiate(find(plait.runner.host.registry, "s3.process-new-objects").blueprint,
                       NAMESPACE, "summaries")  # fmt: skip
    for old, new in (("defaults: incoming-bucket", f"defaults: {bucket}"),
                     ("bucket: incoming-bucket", f"bucket: {bucket}"),
                     ('endpointOverride: ""', f"endpointOverride: {s3.endpoint}"),
                     ('defaults: ""', f"defaults: {s3.endpoint}")):  # fmt: skip
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    await plait.runner.deploy(text, file="summaries.yaml")

    drives: list[asyncio.Task[Execution]] = []

    def spawn(coro: Coroutine[Any, Any, Execution], what: str) -> object:
        drives.append(asyncio.create_task(coro))
        return drives[-1]

    scheduler = Scheduler(plait.runner, plait.repo, spawn, clock=lambda: T0)
    try:
        await scheduler.evaluate(T0)
        await scheduler.poller.settle()
        assert len(drives) == 1
        [execution] = await asyncio.gather(*drives)
        # A minute later the prefix is empty: nothing starts again.
        await scheduler.evaluate(T0 + timedelta(minutes=1, seconds=1))
        await scheduler.poller.settle()
        assert len(drives) == 1
    finally:
        await scheduler.poller.close()
    assert execution.state is State.SUCCESS, execution.error
    archived = ["archive/a.csv", "archive/b.csv", "archive/c.csv"]
    assert execution.outputs == {"processed": 3, "sources": archived}
    objects = s3.objects(bucket)
    assert sorted(objects) == sorted(
        [*archived, "results/a.csv.json", "results/b.csv.json", "results/c.csv.json"]
    )  # the incoming/ objects were moved, none left behind
    assert json.loads(objects["results/a.csv.json"]) == {
        "source": "archive/a.csv", "rows": 2, "columns": ["id", "amount"],
        "sums": {"id": 3.0, "amount": 6.5},
    }  # fmt: skip
    assert json.loads(objects["results/c.csv.json"])["sums"] == {"id": 15.0}
    assert objects["archive/b.csv"] == files["incoming/b.csv"]


async def test_as_a_subflow_it_processes_the_keys_given(plait: Plait, s3: S3) -> None:
    bucket = s3.bucket()
    s3.client.put_object(Bucket=bucket, Key="landing/x.csv", Body=b"qty\n1\n2\n3\n")
    await _credentials(plait)
    execution = await plait.blueprint(
        "s3.process-new-objects",
        {"bucket": bucket, "keys": json.dumps(["landing/x.csv"]), "results_prefix": "out/",
         "concurrency": 2, "s3_endpoint": s3.endpoint},
        NAMESPACE,
    )  # fmt: skip
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"processed": 1, "sources": ["landing/x.csv"]}
    summary = json.loads(s3.objects(bucket)["out/x.csv.json"])
    assert (summary["rows"], summary["sums"]) == (3, {"qty": 6.0})
