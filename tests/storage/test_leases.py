"""Execution leases in the repository: a compare-and-swap claim, renewal, release, and saves
fenced by the lease, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from backends import Backend
from plait.flows import State
from plait.records import Execution, Lease, LeaseLost, LogRecord, TaskRun, utcnow
from plait.storage import SqlRepository


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


def _execution() -> Execution:
    execution = Execution(namespace="ns", flow_id="f", flow_revision=1)
    execution.transition(State.CREATED)
    execution.transition(State.RUNNING)
    return execution


def _lease(owner: str, epoch: int, *, seconds: float = 30, release: bool = False) -> Lease:
    return Lease(owner, epoch, utcnow() + timedelta(seconds=seconds), release)


async def test_an_execution_saved_before_leases_existed_is_free(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution)  # no lease: as stored before migration 0003
    holder = await repo.lease(execution.id)
    assert holder is not None
    assert holder.owner is None
    assert holder.expires is None
    now = utcnow()
    assert await repo.claim(execution.id, "a", now + timedelta(seconds=30), now=now) == 1
    assert await repo.claim("no-such-id", "a", now + timedelta(seconds=30), now=now) is None


async def test_a_live_lease_is_refused_an_expired_one_taken(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution, lease=_lease("a", 1, seconds=10))
    now = utcnow()
    later = now + timedelta(seconds=10)
    assert await repo.claim(execution.id, "b", later, now=now) is None
    assert await repo.claim(execution.id, "a", later, now=now) == 2  # its own: claimed again
    # Expired (the clock is past the expiry): taken, and the epoch moves on.
    past_expiry = now + timedelta(seconds=11)
    epoch = await repo.claim(
        execution.id, "b", past_expiry + timedelta(seconds=30), now=past_expiry
    )
    assert epoch == 3
    holder = await repo.lease(execution.id)
    assert holder is not None
    assert holder.owner == "b"
    assert holder.epoch == 3
    assert holder.expires is not None
    assert holder.expires.tzinfo is not None


async def test_a_dead_owner_is_taken_from_only_when_named(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution, lease=_lease("dead", 1))
    now = utcnow()
    until = now + timedelta(seconds=30)
    assert await repo.claim(execution.id, "b", until, now=now, dead_owner="other") is None
    assert await repo.claim(execution.id, "b", until, now=now, dead_owner="dead") == 2
    # Once b holds it, naming the dead owner again takes nothing.
    assert await repo.claim(execution.id, "c", until, now=now, dead_owner="dead") is None


async def test_of_concurrent_claims_exactly_one_wins(backend: Backend) -> None:
    repos = [SqlRepository(backend.url) for _ in range(4)]
    for r in repos:
        await r.open()
    try:
        executions = [_execution() for _ in range(10)]
        for execution in executions:
            await repos[0].save(execution)
        now = utcnow()
        until = now + timedelta(seconds=30)
        for execution in executions:
            results = await asyncio.gather(
                *(r.claim(execution.id, f"owner-{i}", until, now=now) for i, r in enumerate(repos))
            )
            assert sum(1 for e in results if e is not None) == 1, results
    finally:
        for r in repos:
            await r.close()


async def test_a_stale_owners_save_writes_nothing(repo: SqlRepository, backend: Backend) -> None:
    execution = _execution()
    await repo.save(execution, lease=_lease("a", 1, seconds=0.01))
    await asyncio.sleep(0.05)
    now = utcnow()
    assert await repo.claim(execution.id, "b", now + timedelta(seconds=30), now=now) == 2
    # a, unaware, saves a task run, a log line and a new state under its old lease.
    run = TaskRun(execution_id=execution.id, task_id="t")
    run.transition(State.SUCCESS)
    execution.transition(State.SUCCESS)
    log = LogRecord(execution_id=execution.id, level="INFO", message="stale")
    with pytest.raises(LeaseLost, match="taken over by b") as caught:
        await repo.save(execution, [run], logs=[log], lease=_lease("a", 1))
    assert caught.value.holder is not None
    assert caught.value.holder.owner == "b"
    stored = await repo.get_execution(execution.id)
    assert stored is not None
    assert stored.state is State.RUNNING
    assert stored.task_runs == []
    assert await repo.logs(execution.id) == []
    assert backend.execute("SELECT count(*) FROM task_runs") == [(0,)]
    # b's save goes through, and its release frees the lease for anyone.
    await repo.save(execution, [run], lease=_lease("b", 2, release=True))
    stored = await repo.get_execution(execution.id)
    assert stored is not None
    assert stored.state is State.SUCCESS
    holder = await repo.lease(execution.id)
    assert holder is not None
    assert holder.owner == "b"
    assert holder.expires is None
    now = utcnow()
    assert await repo.claim(execution.id, "c", now + timedelta(seconds=30), now=now) == 3


async def test_the_same_owner_at_an_older_epoch_is_fenced_too(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution, lease=_lease("a", 1))
    now = utcnow()
    assert await repo.claim(execution.id, "a", now + timedelta(seconds=30), now=now) == 2
    with pytest.raises(LeaseLost):
        await repo.save(execution, lease=_lease("a", 1))
    await repo.save(execution, lease=_lease("a", 2))


async def test_renew_extends_only_what_the_owner_still_holds(repo: SqlRepository) -> None:
    mine, taken, released = _execution(), _execution(), _execution()
    for execution in (mine, taken, released):
        await repo.save(execution, lease=_lease("a", 1, seconds=0.01))
    await repo.release(released.id, "a", 1)
    await asyncio.sleep(0.05)
    now = utcnow()
    assert await repo.claim(taken.id, "b", now + timedelta(seconds=30), now=now) == 2
    until = utcnow() + timedelta(seconds=60)
    kept = await repo.renew("a", [mine.id, taken.id, released.id], until)
    assert kept == {mine.id}
    holder = await repo.lease(mine.id)
    assert holder is not None
    assert holder.expires is not None
    assert abs((holder.expires - until).total_seconds()) < 0.01
    # Renewed: another owner is refused again although the first expiry had passed.
    now = utcnow()
    assert await repo.claim(mine.id, "b", now + timedelta(seconds=30), now=now) is None


async def test_release_needs_the_owner_and_epoch(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution, lease=_lease("a", 1))
    await repo.release(execution.id, "b", 1)
    await repo.release(execution.id, "a", 7)
    holder = await repo.lease(execution.id)
    assert holder is not None
    assert holder.expires is not None
    await repo.release(execution.id, "a", 1)
    holder = await repo.lease(execution.id)
    assert holder is not None
    assert holder.expires is None


async def test_new_executions_saved_with_also_are_held(repo: SqlRepository) -> None:
    failed, successor = _execution(), _execution()
    await repo.save(failed, lease=_lease("a", 1))
    failed.transition(State.RETRIED)
    successor.state = State.CREATED
    await repo.save(failed, also=[successor], lease=_lease("a", 1, release=True))
    first = await repo.lease(failed.id)
    second = await repo.lease(successor.id)
    assert first is not None
    assert first.expires is None
    assert second is not None
    assert second.owner == "a"
    assert second.epoch == 1
    assert second.expires is not None
