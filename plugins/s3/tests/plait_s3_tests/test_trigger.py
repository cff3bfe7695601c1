"""plait.s3.Trigger: every object reaches exactly one execution, across restarts at any point.

``Scheduler`` stands for the hub's durable side: an accepted request is stored in one
transaction with the trigger's state, an evaluation that starts nothing stores the state alone,
and a request whose ``dedup_key`` was seen before starts nothing. A restart is a new trigger
instance given the stored state (``Scheduler.revive``), with fresh clients: what the process
held in memory (a state not yet stored) is lost. ``tests/server`` runs the same against a live
server restarted between polls.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pydantic
import pytest
from plait_s3 import Trigger
from plait_s3 import trigger as trigger_module
from plait_s3._client import POOL
from plait_sdk import ExecutionRequest
from plait_sdk.testing import HarnessContext

from .conftest import keys_of, make_context, new_bucket_name, read


class Scheduler:
    def __init__(self) -> None:
        self.executions: dict[str, ExecutionRequest] = {}
        self.state: dict[str, Any] | None = None

    def accept(self, trigger: Trigger, request: ExecutionRequest | None) -> bool:
        """Persist ``request`` with the trigger's state; False when its dedup key already
        started an execution (the state is stored all the same)."""
        assert request is not None
        assert request.dedup_key
        self.state = trigger.dump_state()
        if request.dedup_key in self.executions:
            return False
        self.executions[request.dedup_key] = request
        return True

    def nothing(self, trigger: Trigger) -> None:
        """An evaluation that started nothing: its state is stored."""
        self.state = trigger.dump_state()

    async def revive(self, trigger: Trigger) -> Trigger:
        """The process restarted: ``trigger`` (a new instance) gets the stored state."""
        await POOL.close()
        trigger.load_state(self.state)
        return trigger

    def handed_over(self) -> Counter[str]:
        """How many executions each ``key@etag`` reached."""
        return Counter(
            f"{o['key']}@{o['etag']}"
            for request in self.executions.values()
            for o in request.variables["objects"]
        )


@pytest.fixture
def tctx(tmp_path: Path) -> HarnessContext:
    return make_context(tmp_path, flow_id="watcher", task_id="watch")


@pytest.fixture
async def archive(s3: Any) -> str:
    name = new_bucket_name()
    await s3.create_bucket(Bucket=name)
    return name


def watcher(conn: dict[str, Any], bucket: str, **props: Any) -> Trigger:
    return Trigger.model_validate({**conn, "bucket": bucket, "interval": "PT1S", **props})


async def put(s3: Any, bucket: str, *keys: str, body: bytes | None = None) -> None:
    for key in keys:
        await s3.put_object(Bucket=bucket, Key=key, Body=body if body is not None else key.encode())


def keys_in(request: ExecutionRequest | None) -> list[str]:
    assert request is not None
    return [o["key"] for o in request.variables["objects"]]


async def test_move_hands_each_object_over_once_then_moves_it(
    conn: dict[str, Any], bucket: str, archive: str, s3: Any, tctx: HarnessContext
) -> None:
    scheduler = Scheduler()
    trigger = watcher(
        conn, bucket, prefix="in/", action="MOVE", moveTo={"bucket": archive, "key": "done"}
    )
    await put(s3, bucket, "in/a.csv", "in/b.csv", "in/sub/c.csv", "in/d.txt", "elsewhere.csv")

    first = await trigger.evaluate(tctx)
    assert keys_in(first) == ["in/a.csv", "in/b.csv", "in/d.txt", "in/sub/c.csv"]
    assert first is not None
    assert scheduler.accept(trigger, first)
    a = first.variables["objects"][0]
    assert a["movedTo"] == {"bucket": archive, "key": "done/a.csv"}
    assert a["uri"] == f"s3://{archive}/done/a.csv"
    assert a["bucket"] == bucket
    assert a["size"] == len("in/a.csv")
    assert a["etag"]
    assert a["lastModified"]
    # The copies exist before the execution runs; the sources leave only once it is accepted.
    assert await read(s3, archive, "done/sub/c.csv") == b"in/sub/c.csv"
    assert len(await keys_of(s3, bucket, "in/")) == 4
    assert await keys_of(s3, bucket, ".plait/") == []  # the state is the server's, not here
    assert scheduler.state is not None
    assert len(scheduler.state["pending"]["objects"]) == 4

    assert await trigger.evaluate(tctx) is None  # completes the batch: nothing new
    scheduler.nothing(trigger)
    assert scheduler.state == {"pending": None}
    assert await keys_of(s3, bucket) == ["elsewhere.csv"]
    assert len(await keys_of(s3, archive)) == 4

    await put(s3, bucket, "in/e.csv")
    assert scheduler.accept(trigger, second := await trigger.evaluate(tctx))
    assert keys_in(second) == ["in/e.csv"]
    assert await trigger.acknowledge(tctx) == 1  # a caller that acknowledges explicitly
    assert await trigger.acknowledge(tctx) == 0
    assert await trigger.evaluate(tctx) is None
    assert set(scheduler.handed_over().values()) == {1}
    assert len(scheduler.handed_over()) == 5
    assert "moved 1 object(s)" in tctx.log_text


@pytest.mark.parametrize("accepted", [False, True], ids=["request-lost", "request-accepted"])
async def test_restart_between_poll_and_action_loses_and_duplicates_nothing(
    conn: dict[str, Any],
    bucket: str,
    archive: str,
    s3: Any,
    tmp_path: Path,
    accepted: bool,
) -> None:
    scheduler = Scheduler()
    props = {"prefix": "in/", "action": "MOVE", "moveTo": {"bucket": archive, "key": "out/"}}
    await put(s3, bucket, "in/1", "in/2", "in/3")
    first = watcher(conn, bucket, **props)
    before = await first.evaluate(make_context(tmp_path, flow_id="watcher", task_id="watch"))
    if accepted:
        assert scheduler.accept(first, before)
    # The process dies here. Objects keep arriving meanwhile.
    await put(s3, bucket, "in/4", "in/5")

    ctx = make_context(tmp_path, flow_id="watcher", task_id="watch")
    trigger = await scheduler.revive(watcher(conn, bucket, **props))
    again = await trigger.evaluate(ctx)
    assert again is not None
    if accepted:  # the batch was completed; the new objects come next
        assert keys_in(again) == ["in/4", "in/5"]
    else:  # never stored: the same objects again, with the new ones
        assert keys_in(again) == [f"in/{i}" for i in range(1, 6)]
    assert scheduler.accept(trigger, again)
    assert await trigger.evaluate(ctx) is None
    scheduler.nothing(trigger)
    assert await keys_of(s3, bucket) == []
    assert sorted(await keys_of(s3, archive)) == [f"out/{i}" for i in range(1, 6)]
    assert scheduler.handed_over() == Counter({f"in/{i}@{o}": 1 for i, o in _etags(scheduler)})
    assert len(scheduler.handed_over()) == 5


def _etags(scheduler: Scheduler) -> list[tuple[str, str]]:
    return [
        (o["key"].removeprefix("in/"), o["etag"])
        for r in scheduler.executions.values()
        for o in r.variables["objects"]
    ]


async def test_crash_while_copying_offers_the_objects_again(
    conn: dict[str, Any],
    bucket: str,
    archive: str,
    s3: Any,
    tctx: HarnessContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scheduler = Scheduler()
    props = {"action": "MOVE", "moveTo": {"bucket": archive, "key": "out"}, "maxKeys": 4}
    await put(s3, bucket, "x1", "x2", "x3", "x4")
    real_copy = trigger_module.copy_object
    calls = 0

    async def dying_copy(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("process killed")
        return await real_copy(*args, **kwargs)

    monkeypatch.setattr(trigger_module, "copy_object", dying_copy)
    with pytest.raises(RuntimeError, match="process killed"):
        await watcher(conn, bucket, **props).evaluate(tctx)
    monkeypatch.setattr(trigger_module, "copy_object", real_copy)
    await put(s3, bucket, "x5")

    trigger = await scheduler.revive(watcher(conn, bucket, **props))
    assert scheduler.accept(trigger, batch := await trigger.evaluate(tctx))
    assert keys_in(batch) == ["x1", "x2", "x3", "x4"]  # copied again: harmless
    assert scheduler.accept(trigger, following := await trigger.evaluate(tctx))
    assert keys_in(following) == ["x5"]
    assert await trigger.evaluate(tctx) is None
    assert sorted(await keys_of(s3, archive)) == ["out/x1", "out/x2", "out/x3", "out/x4", "out/x5"]
    assert set(scheduler.handed_over().values()) == {1}
    assert len(scheduler.handed_over()) == 5


async def test_crash_while_deleting_sources_completes_on_restart(
    conn: dict[str, Any], bucket: str, s3: Any, tctx: HarnessContext
) -> None:
    scheduler = Scheduler()
    await put(s3, bucket, "d1", "d2", "d3")
    first = watcher(conn, bucket, action="DELETE")
    assert scheduler.accept(first, await first.evaluate(tctx))
    # The process died while completing: d1 was deleted, d2 and d3 were not.
    await s3.delete_object(Bucket=bucket, Key="d1")

    trigger = await scheduler.revive(watcher(conn, bucket, action="DELETE"))
    assert await trigger.evaluate(tctx) is None  # completes the stored batch; nothing new
    assert await keys_of(s3, bucket) == []
    assert len(scheduler.executions) == 1


async def test_delete_leaves_an_object_overwritten_meanwhile_for_the_next_batch(
    conn: dict[str, Any], bucket: str, s3: Any, tctx: HarnessContext
) -> None:
    scheduler = Scheduler()
    trigger = watcher(conn, bucket, action="DELETE")
    await put(s3, bucket, "a", "b")
    assert scheduler.accept(trigger, await trigger.evaluate(tctx))
    await put(s3, bucket, "b", body=b"version 2")

    assert scheduler.accept(trigger, second := await trigger.evaluate(tctx))
    assert keys_in(second) == ["b"]  # the new version, handed over on its own
    assert "overwritten since it was listed" in tctx.log_text
    assert await keys_of(s3, bucket) == ["b"]  # the second batch is in flight
    assert await trigger.evaluate(tctx) is None
    assert await keys_of(s3, bucket) == []
    assert len(scheduler.handed_over()) == 3  # a, b (v1), b (v2): each version once


async def test_none_leaves_objects_and_repeats_an_unchanged_set_under_one_key(
    conn: dict[str, Any], bucket: str, s3: Any, tctx: HarnessContext
) -> None:
    trigger = watcher(conn, bucket, action="NONE", regexp=r".*\.csv")
    await put(s3, bucket, "a.csv", "skip.txt")
    first, again = await trigger.evaluate(tctx), await trigger.evaluate(tctx)
    assert keys_in(first) == ["a.csv"]
    assert first is not None
    assert again is not None
    assert first.dedup_key == again.dedup_key
    await put(s3, bucket, "b.csv")
    changed = await trigger.evaluate(tctx)
    assert keys_in(changed) == ["a.csv", "b.csv"]
    assert changed is not None
    assert changed.dedup_key != first.dedup_key
    assert await keys_of(s3, bucket) == ["a.csv", "b.csv", "skip.txt"]  # nothing written


async def test_old_state_objects_and_moved_objects_in_the_watched_bucket_are_never_offered(
    conn: dict[str, Any], bucket: str, s3: Any, tctx: HarnessContext
) -> None:
    scheduler = Scheduler()
    trigger = watcher(conn, bucket, action="MOVE", moveTo={"key": "done"}, maxKeys=2)
    # A state object left by an earlier version is not an object to hand over.
    await put(s3, bucket, "a", "b", "c", "folder/", ".plait/s3-trigger/ns/flow/watch.json")
    assert keys_in(first := await trigger.evaluate(tctx)) == ["a", "b"]
    assert scheduler.accept(trigger, first)
    assert scheduler.accept(trigger, second := await trigger.evaluate(tctx))
    assert keys_in(second) == ["c"]  # not the state, not done/..., not the folder marker
    assert await trigger.evaluate(tctx) is None
    assert await keys_of(s3, bucket) == [
        ".plait/s3-trigger/ns/flow/watch.json",
        "done/a",
        "done/b",
        "done/c",
        "folder/",
    ]


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_restarts_never_lose_or_repeat_an_object(
    conn: dict[str, Any], bucket: str, archive: str, s3: Any, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    scheduler = Scheduler()
    props = {
        "prefix": "in/",
        "action": "MOVE",
        "moveTo": {"bucket": archive, "key": "out"},
        "maxKeys": 4,
    }
    names = [f"in/{i:02d}" for i in range(12)]
    await put(s3, bucket, *names[:6])
    pending = names[6:]
    idle = 0
    trigger = await scheduler.revive(watcher(conn, bucket, **props))
    for _ in range(60):
        if pending and rng.random() < 0.4:
            await put(s3, bucket, pending.pop(0))
        if rng.random() < 0.3:
            trigger = await scheduler.revive(watcher(conn, bucket, **props))
        ctx = make_context(tmp_path, flow_id="watcher", task_id="watch")
        request = await trigger.evaluate(ctx)
        if rng.random() < 0.25:
            # The process dies before the evaluation's outcome is stored.
            trigger = await scheduler.revive(watcher(conn, bucket, **props))
            continue
        if request is None:
            scheduler.nothing(trigger)
            idle += 1
            if idle >= 2 and not pending:
                break
            continue
        idle = 0
        scheduler.accept(trigger, request)
    else:
        pytest.fail("the trigger never settled")
    assert sorted(k.split("@")[0] for k in scheduler.handed_over()) == names
    assert set(scheduler.handed_over().values()) == {1}
    assert await keys_of(s3, bucket, "in/") == []
    assert sorted(await keys_of(s3, archive)) == [n.replace("in/", "out/") for n in names]


def test_configuration_errors(conn: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="action MOVE needs moveTo"):
        watcher(conn, "bkt", action="MOVE")
    with pytest.raises(pydantic.ValidationError, match="moveTo must differ"):
        watcher(conn, "bkt", action="MOVE", prefix="in/", moveTo={"key": "in"})
    with pytest.raises(pydantic.ValidationError, match="action"):
        watcher(conn, "bkt")  # required, as in Kestra
    with pytest.raises(pydantic.ValidationError, match="invalid regular expression"):
        watcher(conn, "bkt", action="NONE", regexp="[")
