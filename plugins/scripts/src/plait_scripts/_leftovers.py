"""Processes left behind by a Plait process that died with its supervisors: found and killed.

Each script's supervisor keeps a record (``<home>/processes/<id>.json``: its pid and start time,
and those of the Plait process that started it) while it runs. Normally the supervisor kills its
process group itself when Plait dies; if it was killed too (``kill -9`` of the whole tree, the
OOM killer), the record stays, and the next Plait process over that home (``plait executions
recover``, ``plait run``) kills the group, once it has made sure that:

- the Plait process that started it is gone (pid missing, or reused: another start time);
- the group's processes started no earlier than the supervisor and, if the supervisor's pid
  is still in use, it is still the supervisor (same start time): a reused pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from plait_scripts._supervisor import processes, start_time

_directory: Path | None = None
_created: Path | None = None  # the directory known to exist


def configure(home: str | Path | None) -> None:
    """Keep records under ``home/processes`` from now on (None: keep none)."""
    global _directory
    _directory = None if home is None else Path(home) / "processes"


def record_path(name: str) -> Path | None:
    """Where the supervisor of a new process group keeps its record (None: no home known)."""
    global _created
    if _directory is None:
        return None
    if _created != _directory:
        try:
            _directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
        _created = _directory
    return _directory / f"{name}.json"


def forget(path: Path | None) -> None:
    """The group of that record is gone: drop the record."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def kill_leftovers(home: str | Path) -> list[int]:
    """Kill the process groups whose records under ``home`` outlived their Plait process.

    Returns the pids killed. Records of a Plait process still running are left alone.
    """
    directory = Path(home) / "processes"
    try:
        records = sorted(directory.glob("*.json"))
    except OSError:
        return []
    killed: list[int] = []
    for path in records:
        try:
            data = json.loads(path.read_text())
            pid, started = int(data["pid"]), data["start"]
            owner, owner_started = int(data["owner"]), data["ownerStart"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner_started is not None and start_time(owner) == owner_started:
            continue  # its Plait process is still running and will clean up itself
        killed += _kill_group(pid, started)
        forget(path)
    return killed


def _kill_group(pgid: int, started: int | None) -> list[int]:
    if started is None:
        return []
    leader = start_time(pgid)
    if leader is not None and leader != started:
        return []  # the pid was reused: not ours
    members = [
        pid
        for pid, fields in processes().items()
        if int(fields[2]) == pgid and int(fields[19]) >= started
    ]
    for pid in members:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return members
