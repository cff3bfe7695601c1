"""Where master keys come from: ``PLAIT_MASTER_KEY`` or a key file created on first use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from plait_sdk import UserError

from plait.secrets._crypto import KeyRing, MasterKey

ENV_KEY = "PLAIT_MASTER_KEY"
ENV_KEY_FILE = "PLAIT_MASTER_KEY_FILE"


def load_key_ring(key_file: Path | None, *, create: bool = False) -> tuple[KeyRing, str | None]:
    """The key ring and, when a key file was created just now, a notice saying where.

    ``PLAIT_MASTER_KEY`` holds one or more keys separated by commas, the first being primary.
    Otherwise the key file (``PLAIT_MASTER_KEY_FILE`` or ``key_file``) holds one key per line,
    the first being primary; with ``create`` a missing file is created with mode 0600.
    """
    env = os.environ.get(ENV_KEY)
    if env:
        keys = [MasterKey.parse(part) for part in env.split(",") if part.strip()]
        return KeyRing(keys, keys[0].id), None
    path = Path(os.environ.get(ENV_KEY_FILE) or key_file or "")
    if not str(path):
        raise UserError(f"no master key: set {ENV_KEY} or {ENV_KEY_FILE}")
    notice = None
    if not path.exists():
        if not create:
            raise UserError(f"master key file {path} does not exist", file=str(path))
        write_key_file(path, [MasterKey.generate()])
        notice = f"created a new master key in {path} (mode 0600); back it up"
    keys = read_key_file(path)
    return KeyRing(keys, keys[0].id), notice


def read_key_file(path: Path) -> list[MasterKey]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"master key file {path} is readable by others (mode {oct(mode & 0o777)}); "
            "run: chmod 600 " + str(path),
            file=str(path),
        )
    lines = [ln.strip() for ln in path.read_text("ascii").splitlines()]
    keys = []
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(MasterKey.parse(line))
        except UserError as error:
            raise UserError(error.reason, file=str(path), line=number) from None
    if not keys:
        raise UserError(f"master key file {path} holds no key", file=str(path))
    return keys


def write_key_file(path: Path, keys: list[MasterKey]) -> None:
    """Write keys (primary first) atomically with mode 0600."""
    from plait.files import make_private_dirs

    make_private_dirs(path.parent)  # usually the home: created 0700 like the rest of it
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("# Plait master keys, primary first. Keep this file secret and backed up.\n")
        for key in keys:
            handle.write(key.encoded() + "\n")
    os.replace(tmp, path)
