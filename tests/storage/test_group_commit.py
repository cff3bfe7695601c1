"""Group commits: the saves of several executions waiting at once share one transaction, and
each is still acknowledged only once that transaction committed, fenced by its own lease, and
failed alone when its own statement fails (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import PluginHost
from plait.records import Execution, Lease, LeaseLost, LogRecord, TaskRun, utcnow
from plait.storage import SqlRepository


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


def _lease(owner: str, epoch: int) -> Lease:
    return Lease(owner, epoch, utcnow() + timedelta(seconds=30))


def _running() -> Execution:
    execution = Execution(namespace="ns", flow_id="f", flow_revision=1)
    execution.transition(State.CREATED)
    execution.transition(State.RUNNING)
    return execution


def _step(execution: Execution) -> tuple[TaskRun, LogRecord]:
    run = TaskRun(execution_id=execution.id, task_id="t")
    run.transition(State.SUCCESS)
    execution.transition(State.SUCCESS)
    return run, LogRecord(execution_id=execution.id, level="INFO", message=execution.id)


async def _count_transactions(repo: SqlRepository) -> list[str]:
    """Every transaction the repository opens on SQLite from now on (its BEGIN statements,
    as the driver sends them)."""
    seen: list[str] = []

    def hook(conn: Any) -> None:
        conn.connection.driver_connection.set_trace_callback(
            lambda sql: seen.append(sql) if sql.startswith("BEGIN") else None
        )

    await repo.call(hook)
    return seen


async def test_a_stale_lease_in_a_group_fails_only_its_own_execution(
    repo: SqlRepository, backend: Backend
) -> None:
    executions = [_running() for _ in range(6)]
    for execution in executions:
        await repo.save(execution, lease=_lease("a", 1))
    stolen = executions[2]
    later = utcnow() + timedelta(seconds=31)  # a's lease has expired by then: b takes it
    assert await repo.claim(stolen.id, "b", later + timedelta(seconds=30), now=later) == 2
    begins = await _count_transactions(repo) if backend.name == "sqlite" else None

    steps = [_step(e) for e in executions]
    results = await asyncio.gather(
        *(
            repo.save(e, [run], logs=[log], lease=_lease("a", 1))
            for e, (run, log) in zip(executions, steps, strict=True)
        ),
        return_exceptions=True,
    )

    if begins is not None:
        # One transaction held all six saves; one more read who holds the lost lease.
        assert len(begins) == 2, begins
    for execution, result in zip(executions, results, strict=True):
        stored = await repo.get_execution(execution.id)
        assert stored is not None
        if execution is stolen:
            assert isinstance(result, LeaseLost), result
            assert result.execution_id == stolen.id
            assert "taken over by b" in str(result)
            assert stored.state is State.RUNNING
            assert stored.task_runs == []
            assert await repo.logs(execution.id) == []
        else:
            assert result is None, result
            assert stored.state is State.SUCCESS
            assert [r.task_id for r in stored.task_runs] == ["t"]
            assert [r.message for r in await repo.logs(execution.id)] == [execution.id]
    assert backend.execute("SELECT count(*) FROM task_runs") == [(5,)]


async def test_a_failing_statement_fails_only_its_own_save(
    repo: SqlRepository, backend: Backend
) -> None:
    executions = [_running() for _ in range(4)]
    for execution in executions:
        await repo.save(execution, lease=_lease("a", 1))
    broken = executions[1]
    steps = [_step(e) for e in executions]
    # A task run of an execution that does not exist: the foreign key refuses it.
    orphan = TaskRun(execution_id="no-such-execution", task_id="t")

    results = await asyncio.gather(
        *(
            repo.save(e, [run, orphan] if e is broken else [run], logs=[log], lease=_lease("a", 1))
            for e, (run, log) in zip(executions, steps, strict=True)
        ),
        return_exceptions=True,
    )

    for execution, result in zip(executions, results, strict=True):
        stored = await repo.get_execution(execution.id)
        assert stored is not None
        if execution is broken:
            # The driver's own error (the save runs on its cursor), SQLite's or psycopg's.
            assert isinstance(result, Exception), result
            assert "foreign key" in str(result).lower(), repr(result)
            assert stored.state is State.RUNNING  # nothing of it written
            assert stored.task_runs == []
            assert await repo.logs(execution.id) == []
        else:
            assert result is None, result
            assert stored.state is State.SUCCESS
            assert len(stored.task_runs) == 1
            # Written once, although the group was tried whole first.
            assert len(await repo.logs(execution.id)) == 1
    assert backend.execute("SELECT count(*) FROM task_runs") == [(3,)]


FLOW = """\
id: grouped
namespace: bench
tasks:
  - id: only
    type: plait.core.Return
    format: done
"""


async def test_concurrent_executions_share_transactions(tmp_path: Path) -> None:
    """N executions of the bench's one-task flow at once: each takes two durable steps (created,
    ended), both committed before they are acted on, in far fewer than N transactions. (A
    non-pure task, whose workers end at times the machine's load decides, groups less
    predictably: not a figure to assert.)"""
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    try:
        host = PluginHost.discover(entry_points=False)
        runner = Runner(repo, host, LocalStorageBackend(tmp_path / "storage"))
        flow, revision = await runner.deploy(textwrap.dedent(FLOW))
        begins = await _count_transactions(repo)
        n = 40
        done = await asyncio.gather(*(runner.run(flow, revision) for _ in range(n)))
        assert [e.state for e in done] == [State.SUCCESS] * n
        assert len(begins) < n // 4, f"{len(begins)} transactions for {n} executions"
        for execution in done:
            stored = await repo.get_execution(execution.id)
            assert stored is not None
            assert stored.state is State.SUCCESS
            assert [r.state for r in stored.task_runs] == [State.SUCCESS]
        await runner.close()
    finally:
        await repo.close()
