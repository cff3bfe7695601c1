"""Finding flow files: those named directly, and those found below named directories."""

from __future__ import annotations

from pathlib import Path

from plait_sdk import UserError

FLOW_SUFFIXES = (".yaml", ".yml")


def flow_files(paths: tuple[Path, ...]) -> list[Path]:
    """Flow files named directly, and those found below named directories (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in FLOW_SUFFIXES))
        elif path.exists():
            found.append(path)
        else:
            raise UserError("no such file or directory", file=str(path))
    return found
