"""What reaches the terminal: values made printable, so that they cannot drive it.

A value from a flow, an input, a task's output or logs, or the store may hold a newline (a forged
log line), an ANSI/OSC escape sequence (a retitled window, a cleared screen, a hyperlink) or a
bidirectional override (text shown in another order than it reads). The CLI passes every such
value through :func:`printable` before printing it; storage, ``--json`` and the API keep the real
value.
"""

from __future__ import annotations

import re

#: C0 controls but tab, DEL, C1 controls, line/paragraph separators and the bidirectional
#: overrides and isolates ("Trojan Source" reordering).
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r"}


def printable(text: object) -> str:
    """``text`` made safe for a terminal: control characters become visible escapes
    (``\\n``, ``\\x1b``, ``\\x07``, ``\\u202e``); tabs and everything printable stay."""
    shown = text if isinstance(text, str) else str(text)
    return _UNPRINTABLE.sub(_escape, shown)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
