"""Files only their owner can read: the home, the database and internal storage.

They hold logs, outputs, key-value entries and files of every execution, so they are created
0700 (directories) and 0600 (files) whatever the umask, and tightened when found looser.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 (``mkdir(parents=True)`` would
    create the parents with the umask's default mode)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile (another task of the same run)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask


def open_private(path: Path) -> int:
    """A new file for writing (truncated), mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def tighten(path: Path) -> bool:
    """Take group and other permissions off ``path`` (if it exists); ``True`` when changed."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & 0o077:
        return False
    os.chmod(path, mode & ~0o077)
    return True
