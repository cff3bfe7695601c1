"""Over the real CLI, under umask 022: the home, the database (with its -wal and -shm) and
every internal storage file and directory are owner-only (issue 11, "Secrets")."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

PLAIT = str(Path(sys.executable).with_name("plait"))


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(tmp_path / "home")
    return env


def _plait(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    # umask 022 as most systems have it: what is created would be 0644/0755 unless Plait asks.
    command = "umask 022 && exec " + " ".join([PLAIT, *args])
    return subprocess.Popen(
        ["/bin/sh", "-c", command],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _loose(home: Path) -> list[str]:
    """Everything under (and including) the home that group or others may access."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode & 0o077 or (path.is_dir() and mode != wanted):
            found.append(f"{path.relative_to(home.parent)} {oct(mode)}")
    return found


def test_everything_under_the_home_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"""
id: files
namespace: company.team
tasks:
  - {{id: write, type: plait.core.storage.Write, content: "a,b", extension: .csv}}
  - id: wait
    type: plait.scripts.shell.Commands
    commands:
      - touch {started}
      - while [ ! -f {go} ]; do sleep 0.05; done
"""
    )
    home = tmp_path / "home"
    process = _plait(tmp_path, "run", str(flow), "-q")
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert process.poll() is None, "plait run ended early"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # While it runs, SQLite's -wal and -shm files exist beside the database.
        names = {p.name for p in home.iterdir()}
        assert {"plait.db", "plait.db-wal", "plait.db-shm", "master.key"} <= names
        assert len([p for p in (home / "storage").rglob("*") if p.is_file()]) == 1
        assert _loose(home) == []
        go.touch()
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    assert _loose(home) == []


def test_an_existing_loose_home_is_tightened_on_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "storage" / "x").mkdir(parents=True)
    for path in (home, home / "storage"):
        path.chmod(0o755)
    process = _plait(tmp_path, "executions", "list")
    assert process.wait(timeout=120) == 0
    for suffix in ("-wal", "-shm"):
        (home / f"plait.db{suffix}").write_bytes(b"")
    (home / "plait.db").chmod(0o644)
    for suffix in ("-wal", "-shm"):
        (home / f"plait.db{suffix}").chmod(0o644)
    home.chmod(0o755)
    process = _plait(tmp_path, "executions", "list")
    assert process.wait(timeout=120) == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "storage").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "plait.db").stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        path = home / f"plait.db{suffix}"
        assert not path.exists() or stat.S_IMODE(path.stat().st_mode) == 0o600
