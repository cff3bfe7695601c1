"""A server migrates a new or older SQLite database in a child process, so Alembic and Mako never
load into it (they would stay in its memory for its whole life)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from plait.storage._migrate import HEAD, sqlite_revision, upgrade_apart

PROBE = """\
import sys
from pathlib import Path
from plait.storage._migrate import upgrade_apart
done = upgrade_apart(Path(sys.argv[1]))
print(done, "alembic" in sys.modules, "mako" in sys.modules)
"""


def test_new_database_is_migrated_by_a_child_and_alembic_stays_out(tmp_path: Path) -> None:
    database = tmp_path / "plait.db"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(database)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.split() == ["True", "False", "False"]
    assert sqlite_revision(database) == HEAD
    assert database.stat().st_mode & 0o077 == 0  # private, as the server's own open makes it


def test_up_to_date_database_starts_no_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "plait.db"
    assert upgrade_apart(database)

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child process was started for an up-to-date database")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert upgrade_apart(database)


def test_a_failing_child_reports_false(tmp_path: Path) -> None:
    database = tmp_path / "plait.db"
    database.write_bytes(b"not a database" * 100)
    assert not upgrade_apart(database)  # the server's own open then reports the problem
