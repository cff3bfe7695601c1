"""Running the Alembic migrations from code (no alembic.ini needed at run time)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

#: The newest migration. A test checks it matches the scripts, so opening an up-to-date
#: database costs one query instead of importing Alembic (a tenth of a second per process).
HEAD = "0090"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The head according to the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(connection: Connection) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    if current_revision(connection) == HEAD:
        return
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def sqlite_revision(database: Path) -> str | None:
    """The schema revision of a SQLite file, read with the standard library (``None``: no
    file, no schema yet, or unreadable)."""
    if not database.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def upgrade_apart(database: Path) -> bool:
    """Bring a SQLite file's schema to the head in a CHILD process when it is behind: Alembic
    and Mako (~14 MiB) then never load into a long-lived server. Blocking (call it in a
    thread). ``False`` when the child failed: opening the database in this process then runs
    the migrations itself, and reports what went wrong as it always does."""
    if sqlite_revision(database) == HEAD:
        return True
    code = "import sys; from plait.storage._migrate import upgrade_file; upgrade_file(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(database)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0 and sqlite_revision(database) == HEAD


def upgrade_file(database: str) -> None:
    """The child's side of :func:`upgrade_apart`."""
    from sqlalchemy import create_engine

    from plait.storage._private import prepare_sqlite

    prepare_sqlite(Path(database))
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            upgrade(conn)
            conn.commit()
    finally:
        engine.dispose()
