"""Bounded YAML reading: positions for every value, YAML 1.2 booleans, and limits on aliases,
expanded size and depth (see :class:`LimitedComposer`).

A leaf of the core, so that flow files, inputs, blueprints and the ``yaml()`` template function
all read YAML through it without depending on each other.
"""

from plait.safeyaml._yaml import (
    Document,
    LimitedComposer,
    Path,
    Position,
    YamlLimitError,
    dotted,
    parse,
    safe_load,
    too_large,
)

__all__ = [
    "Document",
    "LimitedComposer",
    "Path",
    "Position",
    "YamlLimitError",
    "dotted",
    "parse",
    "safe_load",
    "too_large",
]
