"""kill -9 a real `plait run` process at several points, recover, and check nothing ran twice.

The engine persists every decision before acting on it, and a task run's end together with
its log lines in one transaction; so after a SIGKILL, `plait executions recover` must finish the
execution re-running only the task runs that had not finished, and every log line must be
there exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from plait.flows import State
from plait.records import Execution, LogRecord
from plait.storage import SqlRepository

PLAIT = str(Path(sys.executable).parent / "plait")

FLOW = """\
id: durable
namespace: t
tasks:
  - id: one
    type: plait.core.Log
    message: step-one
  - id: nap1
    type: plait.core.Sleep
    duration: PT0.5S
  - id: two
    type: plait.core.Log
    message: step-two
  - id: fan
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2, 3]
    concurrencyLimit: 0
    tasks:
      - id: each
        type: plait.core.Log
        message: "each-{{ taskrun.value }}"
      - id: nap2
        type: plait.core.Sleep
        duration: PT0.5S
  - id: three
    type: plait.core.Log
    message: step-three
"""
MESSAGES = ["step-one", "step-two", "each-1", "each-2", "each-3", "step-three"]


def _task_states(db: Path) -> list[tuple[str, str]]:
    """(task id, state) of every stored task run; read-only, tolerant of a busy database."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT state, document FROM task_runs").fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    return [(json.loads(doc).get("task_id") or json.loads(doc)["taskId"], st) for st, doc in rows]


def _wait_for(db: Path, task_id: str, state: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (task_id, state) in _task_states(db):
            return
        if proc.poll() is not None:
            pytest.fail(f"plait run ended (exit {proc.returncode}) before {task_id} was {state}")
        time.sleep(0.005)
    pytest.fail(f"{task_id} never became {state}")


async def _stored(db: Path, execution_id: str | None = None) -> tuple[str, Execution | None]:
    repo = SqlRepository.sqlite(db)
    await repo.open()
    try:
        if execution_id is None:
            (execution_id,) = await repo.unfinished_executions()
        else:
            assert await repo.unfinished_executions() == []
        return execution_id, await repo.get_execution(execution_id)
    finally:
        await repo.close()


async def _logs(db: Path, execution_id: str) -> list[LogRecord]:
    repo = SqlRepository.sqlite(db)
    await repo.open()
    try:
        return await repo.logs(execution_id)
    finally:
        await repo.close()


@pytest.mark.parametrize(
    ("task_id", "state"),
    [
        ("one", "SUCCESS"),  # between two tasks
        ("nap1", "RUNNING"),  # in the middle of a running task
        ("nap2", "RUNNING"),  # during a parallel fan-out
        ("each", "SUCCESS"),  # fan-out partly done
        ("two", "SUCCESS"),
    ],
)
def test_kill_9_then_recover_runs_each_task_once(tmp_path: Path, task_id: str, state: str) -> None:
    flow = tmp_path / "durable.yaml"
    flow.write_text(FLOW)
    home = tmp_path / "home"
    db = home / "plait.db"
    env = {**os.environ, "PLAIT_HOME": str(home)}
    with (tmp_path / "run.err").open("wb") as err:
        proc = subprocess.Popen([PLAIT, "run", str(flow), "-q"], env=env, stderr=err)
        try:
            _wait_for(db, task_id, state, proc)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    unfinished, before = asyncio.run(_stored(db))
    assert before is not None
    assert not before.state.terminal
    done_before = {r.id for r in before.task_runs if r.state is State.SUCCESS}

    recovered = subprocess.run(
        [PLAIT, "executions", "recover", "-q"], env=env, capture_output=True, timeout=60
    )
    assert recovered.returncode == 0, recovered.stderr.decode()
    assert b"recovered 1 execution" in recovered.stderr

    _, after = asyncio.run(_stored(db, unfinished))
    assert after is not None
    logs = asyncio.run(_logs(db, unfinished))
    assert after.state is State.SUCCESS, after.error
    # every log line exactly once: nothing that had finished ran again, nothing was lost
    assert Counter(r.message for r in logs) == Counter(MESSAGES)
    # task runs that had succeeded were kept as they were (one attempt, same id)
    for run in after.task_runs:
        if run.id in done_before:
            assert len(run.attempts) <= 1
    # one run per task (per ForEach value), no duplicates
    keys = Counter((r.parent_id, r.iteration, r.value, r.task_id) for r in after.task_runs)
    assert max(keys.values()) == 1
    assert len(after.task_runs) == 3 + 1 + 3 * 2 + 1
    # a task cut off in the middle got a second attempt, the first one marked as lost
    for run in after.task_runs:
        if len(run.attempts) > 1:
            assert run.attempts[0].error == "the process running this attempt stopped"
    if state == "RUNNING":
        interrupted = [r for r in after.task_runs if r.task_id == task_id]
        assert any(len(r.attempts) == 2 for r in interrupted)


CHILD = """\
id: child
namespace: t.lib
tasks:
  - id: child_log
    type: plait.core.Log
    message: child-ran
  - id: child_nap
    type: plait.core.Sleep
    duration: PT0.5S
outputs:
  - id: done
    type: STRING
    value: yes
"""
PARENT = """\
id: parent
namespace: t
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: t.lib
    flowId: child
  - id: after
    type: plait.core.Log
    message: "parent-after-{{ outputs.call.outputs.done }}"
"""


def test_kill_9_while_a_subflow_runs_then_recover(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT)
    home = tmp_path / "home"
    db = home / "plait.db"
    env = {**os.environ, "PLAIT_HOME": str(home)}
    with (tmp_path / "run.err").open("wb") as err:
        proc = subprocess.Popen(
            [PLAIT, "run", str(tmp_path / "parent.yaml"), "-q"], env=env, stderr=err
        )
        try:
            _wait_for(db, "child_nap", "RUNNING", proc)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    recovered = subprocess.run(
        [PLAIT, "executions", "recover", "-q"], env=env, capture_output=True, timeout=60
    )
    assert recovered.returncode == 0, recovered.stderr.decode()

    async def check() -> None:
        repo = SqlRepository.sqlite(db)
        await repo.open()
        try:
            assert await repo.unfinished_executions() == []
            (parent,) = await repo.list_executions(flow_id="parent")
            (child,) = await repo.list_executions(flow_id="child")
            assert parent.state is State.SUCCESS, parent.error
            assert child.state is State.SUCCESS, child.error
            messages = [r.message for r in await repo.logs(child.id)]
            messages += [r.message for r in await repo.logs(parent.id)]
            assert Counter(messages) == Counter(["child-ran", "parent-after-yes"])
        finally:
            await repo.close()

    asyncio.run(check())
