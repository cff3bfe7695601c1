"""The SQL repository (SQLite here) and the local internal storage, against real files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from backends import Backend
from plait.files import ExecutionStorage, LocalStorageBackend, StorageError
from plait.flows import State
from plait.records import Execution, LogRecord, MetricRecord, TaskRun, utcnow
from plait.storage import SqlRepository, _migrate


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


def _execution(state: State = State.RUNNING) -> Execution:
    execution = Execution(namespace="ns", flow_id="f", flow_revision=1)
    execution.transition(State.CREATED)
    execution.transition(state)
    return execution


def test_head_constant_matches_the_migration_scripts() -> None:
    assert _migrate.head_revision() == _migrate.HEAD


async def test_reopening_a_migrated_database_is_a_no_op(backend: Backend) -> None:
    for _ in range(2):
        repo = SqlRepository(backend.url)
        await repo.open()
        await repo.save_flow("ns", "f", "id: f\nnamespace: ns\n")
        await repo.close()
    assert backend.execute("SELECT version_num FROM alembic_version") == [(_migrate.HEAD,)]
    repo = SqlRepository(backend.url)
    await repo.open()
    try:
        assert len(await repo.flow_revisions("ns", "f")) == 1  # same source, same revision
    finally:
        await repo.close()


async def test_flow_revisions(repo: SqlRepository) -> None:
    first = await repo.save_flow("ns", "f", "a")
    same = await repo.save_flow("ns", "f", "a")
    second = await repo.save_flow("ns", "f", "b")
    assert (first.revision, same.revision, second.revision) == (1, 1, 2)
    latest = await repo.get_flow("ns", "f")
    assert latest is not None
    assert latest.source == "b"
    old = await repo.get_flow("ns", "f", 1)
    assert old is not None
    assert old.source == "a"
    assert await repo.delete_flow("ns", "f") is True
    assert await repo.get_flow("ns", "f") is None


async def test_execution_round_trip_and_queries(repo: SqlRepository) -> None:
    execution = _execution()
    run = TaskRun(execution_id=execution.id, task_id="a", outputs={"value": [1, {"x": "é"}]})
    run.transition(State.SUCCESS)
    await repo.save(execution, [run])
    loaded = await repo.get_execution(execution.id)
    assert loaded is not None
    assert loaded.task_runs == [run]
    assert loaded.history == execution.history
    assert await repo.unfinished_executions() == [execution.id]
    assert await repo.count_running("ns", "f") == 1
    done = _execution(State.SUCCESS)
    await repo.save(done)
    listed = await repo.list_executions(namespace="ns", states=[State.SUCCESS])
    assert [e.id for e in listed] == [done.id]
    assert await repo.delete_execution(done.id) is True
    assert await repo.get_execution(done.id) is None


async def test_saved_columns_read_back_through_sqlalchemy(repo: SqlRepository) -> None:
    """save() writes through prepared statements on the driver's cursor; every column must
    read back through SQLAlchemy exactly as the rest of the repository wrote it."""
    from plait.storage._tables import executions, logs, metrics
    from sqlalchemy import select

    execution = _execution()
    log = LogRecord(execution_id=execution.id, task_id="a", attempt=2, level="INFO", message="é")
    metric = MetricRecord(
        execution_id=execution.id, taskrun_id="r", task_id="a", name="n", type="timer", value=0.5
    )
    await repo.save(execution, [], logs=[log], metrics=[metric])

    def read(conn):  # type: ignore[no-untyped-def]
        header = conn.execute(select(executions).where(executions.c.id == execution.id)).one()
        line = conn.execute(select(logs).where(logs.c.execution_id == execution.id)).one()
        point = conn.execute(select(metrics).where(metrics.c.execution_id == execution.id)).one()
        conn.commit()
        return header, line, point

    header, line, point = await repo.call(read)
    assert header.created == execution.created
    assert header.updated == execution.history[-1].date
    assert header.state == "RUNNING"
    assert header.kill_requested is False
    assert header.parent_execution_id is None
    assert (line.attempt, line.level, line.message, line.timestamp) == (
        2,
        "INFO",
        "é",
        log.timestamp,
    )
    assert (point.value, point.tags, point.timestamp) == (0.5, "{}", metric.timestamp)
    # A failed save leaves nothing, and the connection is usable afterwards.
    bad = LogRecord.model_construct(execution_id=execution.id, message="x", level=None)
    with pytest.raises(Exception):  # noqa: B017,PT011 - whatever the driver raises
        await repo.save(_execution(), logs=[bad])
    assert len(await repo.logs(execution.id)) == 1
    await repo.save(execution)
    assert await repo.request_kill(execution.id) is True


async def test_logs_and_metrics_are_saved_with_the_state(repo: SqlRepository) -> None:
    execution = _execution()
    logs = [
        LogRecord(execution_id=execution.id, task_id="a", level=level, message=f"m{i}")
        for i, level in enumerate(["DEBUG", "INFO", "ERROR"])
    ]
    metric = MetricRecord(
        execution_id=execution.id,
        taskrun_id="r",
        task_id="a",
        name="rows",
        type="counter",
        value=3,
        tags={"table": "t"},
    )
    await repo.save(execution, [], logs=logs, metrics=[metric])
    stored = await repo.logs(execution.id)
    assert [r.message for r in stored] == ["m0", "m1", "m2"]
    assert [r.message for r in await repo.logs(execution.id, min_level="INFO")] == ["m1", "m2"]
    after = stored[0].seq
    assert [r.message for r in await repo.logs(execution.id, after_seq=after)] == ["m1", "m2"]
    (got,) = await repo.metrics(execution.id)
    assert (got.name, got.value, got.tags) == ("rows", 3, {"table": "t"})


async def test_a_retried_execution_and_its_successor_are_one_transaction(
    repo: SqlRepository,
) -> None:
    failed = _execution(State.RETRIED)
    successor = _execution(State.CREATED)
    successor.retry_of, failed.retried_by = failed.id, successor.id
    # A log row that cannot be written (no level) must take both headers down with it.
    broken = LogRecord.model_construct(execution_id=failed.id, message="x", level=None)
    with pytest.raises(Exception):  # noqa: B017,PT011 - whatever the driver raises
        await repo.save(failed, logs=[broken], also=[successor])
    assert await repo.get_execution(failed.id) is None
    assert await repo.get_execution(successor.id) is None
    await repo.save(failed, also=[successor])
    stored = await repo.get_execution(successor.id)
    assert stored is not None
    assert stored.retry_of == failed.id
    assert await repo.unfinished_executions() == [successor.id]


async def test_a_kill_request_survives_the_drivers_saves(repo: SqlRepository) -> None:
    execution = _execution()
    await repo.save(execution)
    assert await repo.request_kill(execution.id) is True
    await repo.save(execution)  # the driving process saves its (stale) copy afterwards
    assert await repo.kill_requested(execution.id) is True
    loaded = await repo.get_execution(execution.id)
    assert loaded is not None
    assert loaded.kill_requested is True
    ended = _execution(State.SUCCESS)
    await repo.save(ended)
    assert await repo.request_kill(ended.id) is False


async def test_a_pause_request_survives_the_drivers_saves_until_cleared(
    repo: SqlRepository,
) -> None:
    execution = _execution()
    await repo.save(execution)
    assert await repo.requests(execution.id) == (False, False)
    assert await repo.request_pause(execution.id) is True
    await repo.save(execution)  # the driving process saves its (stale) copy afterwards
    assert await repo.requests(execution.id) == (False, True)
    loaded = await repo.get_execution(execution.id)
    assert loaded is not None
    assert loaded.pause_requested is True
    await repo.clear_pause(execution.id)
    loaded.pause_requested = True  # a stale document does not bring it back: the column counts
    await repo.save(loaded)
    again = await repo.get_execution(execution.id)
    assert again is not None
    assert again.pause_requested is False
    for refused in (_execution(State.SUCCESS), _execution(State.PAUSED)):
        await repo.save(refused)
        assert await repo.request_pause(refused.id) is False
    killing = _execution()
    await repo.save(killing)
    assert await repo.request_kill(killing.id) is True
    assert await repo.request_pause(killing.id) is False
    assert await repo.requests(killing.id) == (True, False)


async def test_purge_removes_old_ended_executions(repo: SqlRepository) -> None:
    ended = _execution(State.SUCCESS)
    running = _execution()
    await repo.save(ended, logs=[LogRecord(execution_id=ended.id, level="INFO", message="x")])
    await repo.save(running)
    assert await repo.purge(ended_before=utcnow() + timedelta(seconds=1)) == 1
    assert await repo.get_execution(ended.id) is None
    assert await repo.logs(ended.id) == []
    assert await repo.get_execution(running.id) is not None


async def _chunks(n: int, size: int) -> AsyncIterable[bytes]:
    for i in range(n):
        yield bytes([i % 256]) * size
        await asyncio.sleep(0)


async def test_internal_storage_round_trip_and_prefix_checks(tmp_path: Path) -> None:
    backend = LocalStorageBackend(tmp_path / "storage")
    mine = ExecutionStorage(backend, "main/ns/f/e1/task/run1", ["main/ns/f/e1"])
    uri = await mine.put("data.bin", _chunks(8, 1 << 16))
    assert uri.startswith("plait://")
    assert await mine.size(uri) == 8 << 16
    assert len(await mine.read_bytes(uri)) == 8 << 16
    other = ExecutionStorage(backend, "main/ns/f/e2/task/run1", ["main/ns/f/e2"])
    with pytest.raises(StorageError):
        await other.read_bytes(uri)  # another execution's file
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b", "x\x00y"):
        with pytest.raises(StorageError):
            await mine.put(bad, b"nope")
    for bad_uri in ("plait://main/ns/f/e1/../e2/x", "file:///etc/passwd", "plait:///etc/passwd"):
        with pytest.raises(StorageError):
            await mine.read_bytes(bad_uri)
    names = await asyncio.to_thread(lambda: [p.name for p in tmp_path.rglob("*")])
    assert "escape.txt" not in names
