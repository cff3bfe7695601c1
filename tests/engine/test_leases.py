"""Executions have one owner at a time: two runners over one store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from plait.engine._runner import Runner, owner_id, owner_is_dead
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.limits import override_limits
from plait.plugins import PluginHost
from plait.records import Execution, LeaseHeld, LeaseLost, utcnow
from plait.storage import SqlRepository

from . import testplugin
from .conftest import runs

FLOW = """
id: gated
namespace: t
tasks:
  - {id: hold, type: test.Gate, name: g}
  - {id: after, type: test.Record}
"""


class Store:
    """One database shared by several runners (as several processes would share it)."""

    def __init__(self, repo: SqlRepository, host: PluginHost, tmp_path: Path) -> None:
        self.repo = repo
        self.host = host
        self.storage = LocalStorageBackend(tmp_path / "storage")
        self.runners: list[Runner] = []

    def runner(self, clock: Callable[[], datetime] = utcnow) -> Runner:
        runner = Runner(self.repo, self.host, self.storage, poll_interval=0.05, clock=clock)
        self.runners.append(runner)
        return runner

    async def start(self, runner: Runner, source: str = FLOW) -> tuple[asyncio.Task[Any], str]:
        flow, revision = await runner.deploy(textwrap.dedent(source))
        execution = await runner.create(flow, revision, {})
        return asyncio.create_task(runner.drive(flow, execution)), execution.id

    async def stored(self, execution_id: str) -> Execution:
        found = await self.repo.get_execution(execution_id)
        assert found is not None
        return found


@pytest.fixture
async def store(backend: Backend, host: PluginHost, tmp_path: Path) -> AsyncIterator[Store]:
    testplugin.reset()
    repo = SqlRepository(backend.url)
    await repo.open()
    shared = Store(repo, host, tmp_path)
    try:
        yield shared
    finally:
        testplugin.GATES.setdefault("g", asyncio.Event()).set()
        for runner in shared.runners:
            await runner.close()
        await repo.close()


async def _gate_started(count: int = 1) -> None:
    for _ in range(1000):
        if len([c for c in testplugin.CALLS["gate:g"] if c == "started"]) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the gate task never started")


def _later(hours: float) -> Callable[[], datetime]:
    """A clock ahead of the others: every lease they took looks expired to it."""
    return lambda: utcnow() + timedelta(hours=hours)


async def test_two_runners_one_store_only_the_owner_drives(store: Store) -> None:
    first, second = store.runner(), store.runner()
    running, execution_id = await store.start(first)
    await _gate_started()
    with pytest.raises(LeaseHeld, match=f"execution {execution_id} is being driven by"):
        await second.recover(execution_id)
    with pytest.raises(LeaseHeld):
        await second.restart(execution_id)
    recovery = await second.recover_unfinished()
    assert recovery.recovered == []
    assert [s.execution_id for s in recovery.skipped] == [execution_id]
    testplugin.GATES["g"].set()
    done = await asyncio.wait_for(running, 10)
    assert done.state is State.SUCCESS
    assert testplugin.CALLS["gate:g"] == ["started"]
    assert testplugin.CALLS["record"] == [None]
    stored = await store.stored(execution_id)
    assert [len(runs(stored, t)) for t in ("hold", "after")] == [1, 1]
    # Ended: the lease is given back, so the execution can be restarted or replayed anywhere.
    holder = await store.repo.lease(execution_id)
    assert holder is not None
    assert holder.owner == first.owner
    assert holder.expires is None


async def test_the_heartbeat_keeps_a_lease_alive_past_its_length(store: Store) -> None:
    with override_limits(lease_seconds=0.6):
        first, second = store.runner(), store.runner()
        running, execution_id = await store.start(first)
        await _gate_started()
        await asyncio.sleep(1.5)  # longer than the lease: only the heartbeat keeps it
        with pytest.raises(LeaseHeld):
            await second.recover(execution_id)
        testplugin.GATES["g"].set()
        assert (await asyncio.wait_for(running, 10)).state is State.SUCCESS


async def test_an_expired_lease_is_taken_and_the_stale_owner_stops_at_once(
    store: Store,
) -> None:
    with override_limits(lease_seconds=0.6):
        stale = store.runner()
        running, execution_id = await store.start(stale)
        await _gate_started()
        # Another process whose clock is past the lease's expiry takes the execution over.
        taker = store.runner(clock=_later(1))
        recovering = asyncio.create_task(taker.recover(execution_id))
        # The stale owner's heartbeat finds the lease taken: its running task is cancelled and
        # it stops driving, before anyone opens the gate.
        with pytest.raises(LeaseLost, match=f"execution {execution_id} was taken over"):
            await asyncio.wait_for(running, 10)
        assert "cancelled" in testplugin.CALLS["gate:g"]
        await _gate_started(2)  # the new owner re-runs the task that was cut off
        testplugin.GATES["g"].set()
        done = await asyncio.wait_for(recovering, 10)
    assert done.state is State.SUCCESS
    assert testplugin.CALLS["record"] == [None]
    stored = await store.stored(execution_id)
    (hold,) = runs(stored, "hold")
    assert len(runs(stored, "after")) == 1
    # The stale owner wrote nothing: its cancelled attempt is not stored as killed.
    assert [a.error for a in hold.attempts] == ["the process running this attempt stopped", None]
    assert stored.state is State.SUCCESS


async def test_a_stale_owner_that_did_not_notice_is_fenced_on_its_next_save(
    store: Store,
) -> None:
    stale = store.runner()  # a 30 s lease: its heartbeat does not come round in this test
    running, execution_id = await store.start(stale)
    await _gate_started()
    taker = store.runner(clock=_later(1))
    recovering = asyncio.create_task(taker.recover(execution_id))
    await _gate_started(2)
    testplugin.GATES["g"].set()  # both owners' gate tasks end; only one may go on
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(running, 10)
    done = await asyncio.wait_for(recovering, 10)
    assert done.state is State.SUCCESS
    assert testplugin.CALLS["record"] == [None]  # `after` ran once, by the new owner
    stored = await store.stored(execution_id)
    assert [len(runs(stored, t)) for t in ("hold", "after")] == [1, 1]


async def test_concurrent_recovers_drive_each_execution_once(store: Store) -> None:
    first = store.runner()
    running, execution_id = await store.start(first)
    await _gate_started()
    running.cancel()  # the process stops (its lease is given back on the way out)
    with pytest.raises(asyncio.CancelledError):
        await running
    recoverers = [store.runner() for _ in range(3)]
    results = asyncio.gather(*(r.recover_unfinished() for r in recoverers))
    await _gate_started(2)
    await asyncio.sleep(0.2)  # let every recoverer try
    testplugin.GATES["g"].set()
    recoveries = await asyncio.wait_for(results, 20)
    assert sum(len(r.recovered) for r in recoveries) == 1
    assert testplugin.CALLS["gate:g"].count("started") == 2
    assert testplugin.CALLS["record"] == [None]
    stored = await store.stored(execution_id)
    assert stored.state is State.SUCCESS


async def test_a_paused_execution_is_free_for_any_process_to_resume(store: Store) -> None:
    first, second = store.runner(), store.runner()
    flow, revision = await first.deploy(
        textwrap.dedent(
            """
            id: approval
            namespace: t
            tasks:
              - {id: wait, type: plait.core.Pause}
              - {id: after, type: test.Record}
            """
        )
    )
    paused = await first.run(flow, revision, {})
    assert paused.state is State.PAUSED
    holder = await store.repo.lease(paused.id)
    assert holder is not None
    assert holder.expires is None
    assert (await second.resume(paused.id, {})).state is State.SUCCESS
    assert testplugin.CALLS["record"] == [None]


def test_owner_ids_are_unique_and_only_exited_local_processes_count_as_dead() -> None:
    mine = owner_id()
    assert mine != owner_id()
    host, _pid, _ = mine.rsplit(":", 2)
    assert not owner_is_dead(mine)  # this process
    assert not owner_is_dead(f"{host}:1:abcd")  # alive (init)
    assert owner_is_dead(f"{host}:{2**22 + 17}:abcd")  # above pid_max: no such process
    assert not owner_is_dead(f"elsewhere:{2**22 + 17}:abcd")  # another host: cannot know
    assert not owner_is_dead("garbage")
