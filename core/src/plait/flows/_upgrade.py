"""Rewriting a flow file's older Kestra forms to the current ones, keeping its layout.

Validation already accepts the older forms (with a warning each, see :mod:`._legacy`); this
writes the fix back into the file. ruamel.yaml's round-trip mode keeps comments, key order,
quoting and block styles, which PyYAML (used for validation) drops.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from plait.flows._legacy import Deprecation, modernize
from plait.safeyaml import safe_load


def upgrade_text(text: str, resolves: Callable[[str], bool]) -> tuple[str, list[Deprecation]]:
    """``text`` with its older forms rewritten, and the older forms found (``text`` itself,
    byte for byte, when none could be rewritten)."""
    # The bounded reader first: a text past the YAML limits (size, depth, aliases) is refused
    # before ruamel.yaml, which has no such limits, reads it.
    safe_load(text)
    _data, indent, sequence_offset = load_yaml_guess_indent(text)
    round_trip = YAML(typ="rt")
    round_trip.preserve_quotes = True
    round_trip.width = 4096  # never re-wrap long lines
    # The guessed indent is the sequence's (dash offset included): "  - id:" is 4 and 2.
    sequence, offset = indent or 2, sequence_offset or 0
    round_trip.indent(mapping=max(sequence - offset, 2), sequence=sequence, offset=offset)
    tree = round_trip.load(text)
    found = modernize(tree, resolves)
    if not any(change.rewritten for change in found):
        return text, found
    out = io.StringIO()
    round_trip.dump(tree, out)
    return out.getvalue(), found
