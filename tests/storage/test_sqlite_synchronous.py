"""SQLite's ``synchronous`` mode: NORMAL by default, FULL or EXTRA on request
(``PLAIT_SQLITE_SYNCHRONOUS``), anything else refused with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from plait.storage import SqlRepository
from plait_sdk import UserError
from sqlalchemy import Connection

#: SQLite's numbers for the modes (PRAGMA synchronous answers with them).
LEVELS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


async def _level(path: Path) -> int:
    repo = SqlRepository.sqlite(path)
    await repo.open()
    try:

        def read(conn: Connection) -> int:
            value = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            conn.commit()
            return int(value or 0)

        return await repo.call(read)
    finally:
        await repo.close()


@pytest.mark.parametrize("asked", [None, "FULL", "extra", "NORMAL"])
async def test_the_mode_asked_for_is_the_one_in_force(
    asked: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if asked is None:
        monkeypatch.delenv("PLAIT_SQLITE_SYNCHRONOUS", raising=False)
    else:
        monkeypatch.setenv("PLAIT_SQLITE_SYNCHRONOUS", asked)
    expected = LEVELS[(asked or "NORMAL").upper()]
    assert await _level(tmp_path / "plait.db") == expected


async def test_an_unknown_mode_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(UserError, match="PLAIT_SQLITE_SYNCHRONOUS='OFF' is not one of NORMAL"):
        await _level(tmp_path / "plait.db")
    assert not (tmp_path / "plait.db").exists() or (tmp_path / "plait.db").stat().st_size == 0
