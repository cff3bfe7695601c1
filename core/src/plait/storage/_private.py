"""The SQLite database file, private to its owner like the rest of the home (see
:mod:`plait.files`): it holds logs, outputs, key-value entries and secrets' ciphertext."""

from __future__ import annotations

import os
from pathlib import Path

from plait.files import make_private_dirs, open_private, tighten

#: SQLite's companions of a database file: they hold its pages too.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def prepare_sqlite(database: Path) -> None:
    """Create the database file 0600 before SQLite does (its -wal, -shm and -journal files
    take the database file's mode), and tighten an existing one and its companions."""
    make_private_dirs(database.parent)
    if not database.exists():
        os.close(open_private(database))  # an empty file is an empty SQLite database
    for suffix in SQLITE_SUFFIXES:
        tighten(database.with_name(database.name + suffix))
