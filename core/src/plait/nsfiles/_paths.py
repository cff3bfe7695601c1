"""Namespace file paths: user input, checked before anything is stored or looked up."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from plait_sdk import UserError, path_matcher

#: Longest path (the database column holds 400 characters).
MAX_PATH = 400
_DRIVE = re.compile(r"^[A-Za-z]:")


_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")


def check_namespace(namespace: str) -> str:
    """``namespace``, or a :class:`UserError` unless it is dot-separated names."""
    if (
        not isinstance(namespace, str)
        or len(namespace) > 255
        or not _NAMESPACE.fullmatch(namespace)
    ):
        raise UserError(
            f"invalid namespace {namespace!r}: letters, digits, '_', '-' separated by dots"
        )
    return namespace


def check_path(path: str, *, directory: bool = False) -> str:
    """``path`` normalised (``a/b.py``), or a :class:`UserError` saying why it is refused.

    A leading ``/`` means the namespace's root, as Kestra writes namespace file paths
    (``/scripts/etl.py``). Refused: ``.`` and ``..`` segments, empty segments, backslashes,
    Windows drive letters, NUL and other control characters, and more than 400 characters.
    With ``directory``, ``""`` and ``"/"`` (the root) are accepted and give ``""``.
    """
    if not isinstance(path, str):
        raise UserError(f"invalid namespace file path {path!r}: not text")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UserError(f"invalid namespace file path {path!r}: control characters")
    if "\\" in path or _DRIVE.match(path):
        raise UserError(f"invalid namespace file path {path!r}: use '/' relative paths")
    if path.startswith("//"):
        raise UserError(f"invalid namespace file path {path!r}: absolute paths are not allowed")
    clean = path.removeprefix("/")
    if directory:
        clean = clean.removesuffix("/")
        if not clean:
            return ""
    if not clean:
        raise UserError("invalid namespace file path: empty")
    for part in clean.split("/"):
        # Also a segment that URL-decodes to one: a path may be decoded again on its way.
        if part in ("", ".", "..") or urllib.parse.unquote(part) in (".", ".."):
            raise UserError(
                f"invalid namespace file path {path!r}: '..', '.' and empty segments are refused"
            )
    if len(clean) > MAX_PATH:
        raise UserError(f"invalid namespace file path: longer than {MAX_PATH} characters")
    return clean


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a namespace file path matches one of Kestra's ``include``/``exclude``/``files``
    patterns (see :func:`plait_sdk.path_matcher`)."""
    return path_matcher(patterns)


def below(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` itself or a file under the directory ``prefix``."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


def name_of(path: str) -> str:
    return PurePosixPath(path).name
