"""Over the real CLI: one process drives an execution at a time, and a database that fails
under a run is one clear line (exit 75) leaving the execution for `plait executions recover`."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

PLAIT = str(Path(sys.executable).parent / "plait")

FLOW = """\
id: long
namespace: t
tasks:
  - {id: one, type: plait.core.Log, message: step-one}
  - {id: nap1, type: plait.core.Sleep, duration: PT3S}
  - {id: two, type: plait.core.Log, message: step-two}
  - {id: nap2, type: plait.core.Sleep, duration: PT1S}
  - {id: three, type: plait.core.Log, message: step-three}
"""
TASKS = ["one", "nap1", "two", "nap2", "three"]
MESSAGES = ["step-one", "step-two", "step-three"]


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet


def _task_states(db: Path) -> list[tuple[str, str]]:
    rows = _rows(db, "SELECT state, document FROM task_runs") if db.exists() else []
    return [(json.loads(str(doc))["taskId"], str(state)) for state, doc in rows]


def _wait_for(db: Path, task_id: str, state: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (task_id, state) in _task_states(db):
            return
        if proc.poll() is not None:
            pytest.fail(f"plait run ended (exit {proc.returncode}) before {task_id} was {state}")
        time.sleep(0.01)
    pytest.fail(f"{task_id} never became {state}")


def _each_task_ran_once(db: Path, tasks: list[str], messages: list[str]) -> None:
    assert _rows(db, "SELECT state FROM executions") == [("SUCCESS",)]
    assert Counter(t for t, _ in _task_states(db)) == Counter(tasks)
    assert {s for _, s in _task_states(db)} == {"SUCCESS"}
    logged = [
        str(m) for (m,) in _rows(db, "SELECT message FROM logs") if str(m).startswith("step-")
    ]
    assert Counter(logged) == Counter(messages)


def _setup(tmp_path: Path, source: str = FLOW) -> tuple[Path, Path, dict[str, str]]:
    flow = tmp_path / "long.yaml"
    flow.write_text(source)
    home = tmp_path / "home"
    return flow, home / "plait.db", {**os.environ, "PLAIT_HOME": str(home)}


GATED = """\
id: gated
namespace: t
tasks:
  - {id: one, type: plait.core.Log, message: step-one}
  - id: wait
    type: plait.scripts.shell.Commands
    commands: ["while [ ! -f 'GO' ]; do sleep 0.05; done"]
  - {id: two, type: plait.core.Log, message: step-two}
"""


def test_recover_while_plait_run_drives_leaves_the_execution_to_it(tmp_path: Path) -> None:
    go = tmp_path / "go"
    flow, db, env = _setup(tmp_path, GATED.replace("GO", str(go)))
    proc = subprocess.Popen([PLAIT, "run", str(flow), "-q"], env=env, stderr=subprocess.PIPE)
    try:
        _wait_for(db, "wait", "RUNNING", proc)
        recover = subprocess.Popen(
            [PLAIT, "executions", "recover", "-q"], env=env, stderr=subprocess.PIPE
        )
        try:
            _, recovered = recover.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # it drives the execution too (waits for `go`)
            go.touch()
            _, recovered = recover.communicate(timeout=60)
    finally:
        go.touch()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert recover.returncode == 0, recovered.decode()
    assert b"recovered 0 execution(s)" in recovered
    assert b"is being driven by" in recovered
    _each_task_ran_once(db, ["one", "wait", "two"], ["step-one", "step-two"])


def test_two_recovers_at_once_after_kill_9_run_each_task_once(tmp_path: Path) -> None:
    flow, db, env = _setup(tmp_path)
    proc = subprocess.Popen([PLAIT, "run", str(flow), "-q"], env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for(db, "nap1", "RUNNING", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    recovers = [
        subprocess.Popen(
            [PLAIT, "executions", "recover", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=90)[1].decode() for r in recovers]
    assert [r.returncode for r in recovers] == [0, 0], outputs
    assert sum("recovered 1 execution(s)" in out for out in outputs) == 1, outputs
    _each_task_ran_once(db, TASKS, MESSAGES)


def test_a_database_locked_too_long_is_one_line_and_recoverable(tmp_path: Path) -> None:
    flow, db, env = _setup(tmp_path)
    env["PLAIT_LIMIT_DATABASE_BUSY_SECONDS"] = "1"
    proc = subprocess.Popen([PLAIT, "run", str(flow), "-q"], env=env, stderr=subprocess.PIPE)
    locker = None
    try:
        _wait_for(db, "nap1", "RUNNING", proc)
        locker = sqlite3.connect(db, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        _, err = proc.communicate(timeout=60)
    finally:
        if locker is not None:
            locker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode()
    assert proc.returncode == 75, text
    assert "internal error" not in text
    assert "Traceback" not in text
    (line,) = [x for x in text.splitlines() if not x.startswith("note:")]  # one line
    assert "database locked by another process for more than 1 s" in line
    assert str(db) in line
    assert "`plait executions recover` will finish it" in line
    recovered = subprocess.run(
        [PLAIT, "executions", "recover", "-q"], env=env, capture_output=True, timeout=60
    )
    assert recovered.returncode == 0, recovered.stderr.decode()
    assert b"recovered 1 execution(s)" in recovered.stderr
    _each_task_ran_once(db, TASKS, MESSAGES)


def test_a_lock_held_longer_than_sqlites_own_wait_is_retried(tmp_path: Path) -> None:
    # SQLite waited 10 s for a lock before giving up, once; a lock held 15 s (from the start of
    # a 3 s task: the run waits 12 s) is now retried with backoff within database_busy_seconds
    # (30 s by default) and the run succeeds.
    flow, db, env = _setup(tmp_path)
    proc = subprocess.Popen([PLAIT, "run", str(flow), "-q"], env=env, stderr=subprocess.PIPE)
    try:
        _wait_for(db, "nap1", "RUNNING", proc)
        locker = sqlite3.connect(db, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        time.sleep(15)
        locker.close()
    finally:
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err.decode()
    _each_task_ran_once(db, TASKS, MESSAGES)


def test_a_disk_io_error_mid_run_is_one_line_and_recoverable(tmp_path: Path) -> None:
    """The kernel refuses writes past a file-size limit (RLIMIT_FSIZE; SIGXFSZ is ignored by
    Python), which SQLite reports as a disk I/O error: a real write failure, no mock."""
    naps = "".join(
        f"  - {{id: n{i}, type: plait.core.Sleep, duration: PT0S}}\n" for i in range(300)
    )
    flow, db, env = _setup(tmp_path, f"id: io\nnamespace: t\ntasks:\n{naps}")
    warm = tmp_path / "warm.yaml"
    warm.write_text("id: warm\nnamespace: t\ntasks:\n  - {id: a, type: plait.core.Return}\n")
    subprocess.run([PLAIT, "run", str(warm), "-q"], env=env, check=True, timeout=60)
    limit = db.stat().st_size + 96 * 1024  # the WAL grows past it after some commits

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [PLAIT, "run", str(flow), "-q"],
        env=env,
        capture_output=True,
        timeout=120,
        preexec_fn=cap,  # only sets a resource limit
    )
    text = proc.stderr.decode()
    assert proc.returncode == 75, text
    assert "internal error" not in text
    assert "Traceback" not in text
    (line,) = [x for x in text.splitlines() if not x.startswith("note:")]  # one line
    assert line.startswith("error: disk I/O error: "), line
    assert str(db) in line
    assert "`plait executions recover` will finish it" in line
    recovered = subprocess.run(
        [PLAIT, "executions", "recover", "-q"], env=env, capture_output=True, timeout=120
    )
    assert recovered.returncode == 0, recovered.stderr.decode()
    (io,) = [r for r in _rows(db, "SELECT state, flow_id FROM executions") if r[1] == "io"]
    assert io[0] == "SUCCESS"
    ran = Counter(t for t, _ in _task_states(db) if t.startswith("n"))
    assert ran == Counter(f"n{i}" for i in range(300))
