"""Kestra's file patterns (Ant-style globs and ``regex:``), shared by the core and plugins."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            c = pattern[i]
            out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
            i += 1
    return "".join(out)


def path_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate: whether a ``/``-separated relative path matches one of ``patterns``, as
    Kestra reads them: an Ant-style glob (``**`` crosses folders, ``*`` and ``?`` do not),
    optionally written ``glob:...``; a ``regex:...`` regular expression (matching the whole
    path); or a plain path. A leading ``/`` is ignored (Kestra's namespace file form).

    Example::

        keep = path_matcher(["scripts/**", "glob:**/*.sql"])
        keep("scripts/etl.py")    # True
        keep("data/x.csv")        # False
    """
    compiled: list[re.Pattern[str]] = []
    for raw in patterns:
        pattern = str(raw).strip()
        if pattern.startswith("regex:"):
            compiled.append(re.compile(pattern[len("regex:") :]))
        else:
            text = pattern.removeprefix("glob:").removeprefix("/")
            compiled.append(re.compile(_glob_regex(text)))

    def matches(path: str) -> bool:
        return any(p.fullmatch(path) or p.fullmatch("/" + path) for p in compiled)

    return matches
