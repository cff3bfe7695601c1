"""A script's processes never outlive the `plait` process that started them (kill -9 included)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from plait_scripts import _leftovers
from plait_scripts._supervisor import processes, start_time

PLAIT = str(Path(sys.executable).with_name("plait"))
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

FLOW = """\
id: orphans
namespace: test
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Script
    script: |
      if [ -e {dir}/done ]; then echo second run; exit 0; fi
      touch {dir}/done
      sleep 1000 &
      sleep 1000 &
      ( sleep 1000 & wait ) &
      setsid sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 1000' \
        {dir}/escaped.pid > /dev/null 2>&1 &
      echo $$ > {dir}/main.pid.tmp && mv {dir}/main.pid.tmp {dir}/main.pid
      wait
"""


def _group(pgid: int) -> list[int]:
    return [pid for pid, fields in processes().items() if int(fields[2]) == pgid]


def _wait_for(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, dict[str, str]]]:
    """`plait run` of a flow whose shell script left three `sleep 1000` in the background,
    and the script's process group."""
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.format(dir=tmp_path))
    env = {**os.environ, "PLAIT_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [PLAIT, "run", str(flow)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pgid = 0
    try:
        _wait_for((tmp_path / "main.pid").exists, "the script to start")
        _wait_for((tmp_path / "escaped.pid").exists, "the setsid daemon to start")
        pgid = os.getpgid(int((tmp_path / "main.pid").read_text()))
        _wait_for(lambda: len(_group(pgid)) >= 5, "the background sleeps")
        yield process, pgid, env
    finally:
        process.kill()
        process.wait()
        if pgid:
            for pid in _group(pgid):
                os.kill(pid, signal.SIGKILL)
        escaped = tmp_path / "escaped.pid"
        if escaped.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(escaped.read_text()), signal.SIGKILL)


def test_kill_9_of_plait_kills_the_scripts_whole_process_group(
    running: tuple[subprocess.Popen[bytes], int, dict[str, str]], tmp_path: Path
) -> None:
    process, pgid, _ = running
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _wait_for(lambda: not _group(pgid), "the script's processes to die with plait")
    # Even the one that left the group with setsid(): re-parented to the supervisor, found.
    escaped = int((tmp_path / "escaped.pid").read_text())
    _wait_for(lambda: start_time(escaped) is None, "the setsid daemon to die with plait")


def test_recover_kills_what_a_killed_supervisor_left_behind(
    running: tuple[subprocess.Popen[bytes], int, dict[str, str]], tmp_path: Path
) -> None:
    process, pgid, env = running
    records = list((tmp_path / "home" / "processes").glob("*.json"))
    assert len(records) == 1
    # The supervisor (the group's leader) dies with plait, before it could do its job.
    os.kill(pgid, signal.SIGSTOP)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    os.kill(pgid, signal.SIGKILL)
    _wait_for(lambda: start_time(pgid) is None, "the supervisor to die")
    time.sleep(0.5)
    left = _group(pgid)
    assert len(left) >= 4, "the script and its sleeps are orphans now"
    done = subprocess.run(
        [PLAIT, "executions", "recover"], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    _wait_for(lambda: not _group(pgid), "recovery to kill the leftovers")
    assert not records[0].exists()


def test_a_record_whose_pid_was_reused_or_whose_plait_lives_kills_nothing(
    tmp_path: Path,
) -> None:
    sleeper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        started = start_time(sleeper.pid)
        assert started is not None
        records = tmp_path / "processes"
        records.mkdir()
        dead_owner = {"owner": 1, "ownerStart": -1}
        alive_owner = {"owner": os.getpid(), "ownerStart": start_time(os.getpid())}
        cases = [
            {"pid": sleeper.pid, "start": started + 1, **dead_owner},  # the pid was reused
            {"pid": sleeper.pid, "start": started, **alive_owner},  # plait still runs it
        ]
        for number, record in enumerate(cases):
            (records / f"{number}.json").write_text(json.dumps(record))
            assert _leftovers.kill_leftovers(tmp_path) == []
            assert sleeper.poll() is None
        (records / "2.json").write_text(
            json.dumps({"pid": sleeper.pid, "start": started, **dead_owner})
        )
        assert _leftovers.kill_leftovers(tmp_path) == [sleeper.pid]
        assert sleeper.wait(timeout=TIMEOUT) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
