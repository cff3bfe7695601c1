"""Source-level translation of the Pebble forms Kestra flows use into Jinja2.

Jinja's lexer rejects ``?`` outright, so these forms are rewritten before Jinja sees the source:

* ``cond ? a : b``  ->  ``(a if cond else b)`` (only the chosen branch is evaluated)
* ``a ?? b``        ->  ``((a) | plait_coalesce(b))`` (undefined- and null-safe fallback; the
  engine's code generator compiles this filter so that ``a`` is evaluated once and ``b`` only
  when it is needed)
* ``a ??? b``       ->  ``((a) | plait_undefined_coalesce(b))`` (``b`` only when ``a`` is
  undefined: a null ``a`` is kept, as Pebble's undefined-coalescing operator does)
* ``a equals b``    ->  ``a == b``

The rewrite works on tokens inside ``{{ }}`` and ``{% %}`` only, never inside string literals or
raw text, and keeps every newline where it was so Jinja's line numbers stay right. A malformed
form (``a ?? ``, ``?? b``, ``c ? a``, ``c ? a :``, ``? a : b``, and the elvis ``a ?: b``,
which Pebble does not have either) is a :class:`TemplateSyntaxError` naming the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plait.templating._errors import TemplateSyntaxError

_TAG = re.compile(r"(\{\{-?|\{%-?|\{#)")
_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>\?\?|\?|==|!=|<=|>=|//|\*\*|[-+*/%~|=<>(),.\[\]{}:!])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPEN_BRACKETS = {"(": ")", "[": "]", "{": "}"}
#: Tokens after which an expression (and so a ternary condition) starts.
_BOUNDARY_NAMES = {"if", "elif", "in", "set", "for", "else"}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int = -1  # offset in the tag's body, for error lines


class _RewriteError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def translate(source: str) -> str:
    """Rewrite the Pebble forms in ``source``; plain Jinja passes through unchanged."""
    if "?" not in source and "equals" not in source:
        return source
    out: list[str] = []
    pos = 0
    raw_depth = False
    while True:
        match = _TAG.search(source, pos)
        if match is None:
            out.append(source[pos:])
            break
        out.append(source[pos : match.end()])
        opener = match.group(1)[:2]
        close = _CLOSE[opener]
        end = _find_close(source, match.end(), close)
        if end < 0:
            out.append(source[match.end() :])  # unterminated: leave it to Jinja's error
            break
        body = source[match.end() : end]
        inner = body.rstrip("-") if body.endswith("-") else body
        trail = body[len(inner) :]
        try:
            rewritten = body if opener == "{#" or raw_depth else _rewrite(inner) + trail
        except _RewriteError as error:
            offset = match.end() + max(error.pos, 0)
            line = source.count("\n", 0, offset) + 1
            shown = source.splitlines()[line - 1].strip()
            raise TemplateSyntaxError(error.message, line=line, expression=shown) from None
        if opener == "{%":
            word = inner.strip().split(" ", 1)[0]
            if word == "raw":
                raw_depth = True
            elif word == "endraw":
                raw_depth = False
                rewritten = body
        out.append(rewritten)
        pos = end
    return "".join(out)


def _find_close(source: str, start: int, close: str) -> int:
    """Index of the closing delimiter, skipping string literals."""
    i, n = start, len(source)
    quote = ""
    while i < n:
        ch = source[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif source.startswith(close, i):
            return i
        i += 1
    return -1


def _tokenize(text: str) -> list[_Tok]:
    return [_Tok(m.lastgroup or "other", m.group(), m.start()) for m in _TOKEN.finditer(text)]


def _rewrite(text: str) -> str:
    if "?" not in text and "equals" not in text:
        return text
    tokens = _tokenize(text)
    for i, tok in enumerate(tokens):
        if tok.kind == "name" and tok.text == "equals":
            tok.kind, tok.text = "op", "=="
        elif _is_op(tok, "??") and i + 1 < len(tokens) and _is_op(tokens[i + 1], "?"):
            tok.text = "???"  # Pebble's undefined-coalescing: one operator
            tokens[i + 1].kind, tokens[i + 1].text = "ws", ""
    return _render_group(tokens)


def _is_op(tok: _Tok, text: str) -> bool:
    return tok.kind == "op" and tok.text == text


def _blank(tokens: list[_Tok]) -> bool:
    return all(t.kind == "ws" for t in tokens)


def _render_group(tokens: list[_Tok]) -> str:
    """Rewrite one bracket level: recurse into brackets, then handle ternaries and ``??``."""
    # First collapse nested brackets into pre-rendered single tokens.
    flat: list[_Tok] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "op" and tok.text in _OPEN_BRACKETS:
            closing = _OPEN_BRACKETS[tok.text]
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                t = tokens[j]
                if t.kind == "op" and t.text in _OPEN_BRACKETS:
                    depth += 1
                elif t.kind == "op" and t.text in _OPEN_BRACKETS.values():
                    depth -= 1
                j += 1
            inner = tokens[i + 1 : j - 1] if depth == 0 else tokens[i + 1 : j]
            end = closing if depth == 0 else ""
            flat.append(_Tok("group", tok.text + _render_segments(inner) + end, tok.pos))
            i = j
            continue
        flat.append(tok)
        i += 1
    return _render_segments(flat, top=True)


def _render_segments(tokens: list[_Tok], top: bool = False) -> str:
    if any(t.kind != "group" for t in tokens) and not top:
        return _render_group(tokens) if _has_brackets(tokens) else _split_commas(tokens)
    return _split_commas(tokens)


def _has_brackets(tokens: list[_Tok]) -> bool:
    return any(t.kind == "op" and t.text in _OPEN_BRACKETS for t in tokens)


def _split_commas(tokens: list[_Tok]) -> str:
    parts: list[list[_Tok]] = [[]]
    for tok in tokens:
        if tok.kind == "op" and tok.text == ",":
            parts.append([])
        else:
            parts[-1].append(tok)
    return ",".join(_ternary(part) for part in parts)


def _text(tokens: list[_Tok]) -> str:
    return "".join(t.text for t in tokens)


def _ternary(tokens: list[_Tok]) -> str:
    q = next((i for i, t in enumerate(tokens) if t.kind == "op" and t.text == "?"), None)
    if q is None:
        return _coalesce(tokens)
    # The condition starts after the last boundary before the '?' (a dict key's ':', an '=',
    # a statement keyword such as 'if' or 'set').
    start = 0
    for i in range(q - 1, -1, -1):
        t = tokens[i]
        if (t.kind == "op" and t.text in (":", "=")) or (
            t.kind == "name" and t.text in _BOUNDARY_NAMES
        ):
            start = i + 1
            break
    # Find the ':' matching this '?' (nested ternaries in the then-branch pair up inside).
    depth, colon = 0, None
    for i in range(q + 1, len(tokens)):
        t = tokens[i]
        if t.kind == "op" and t.text == "?":
            depth += 1
        elif t.kind == "op" and t.text == ":":
            if depth == 0:
                colon = i
                break
            depth -= 1
    if _blank(tokens[start:q]):
        raise _RewriteError("'cond ? a : b' needs a condition before '?'", tokens[q].pos)
    if colon is None:
        raise _RewriteError("'?' without its ':': write 'cond ? a : b'", tokens[q].pos)
    if _blank(tokens[q + 1 : colon]):
        raise _RewriteError(
            "'?:' is not supported: write 'a ?? b' (b when a is undefined or null) "
            "or 'a ? a : b' (b when a is false)",
            tokens[q].pos,
        )
    if _blank(tokens[colon + 1 :]):
        raise _RewriteError("'cond ? a : b' needs a value after ':'", tokens[colon].pos)
    head = _text(tokens[:start])
    cond = _coalesce(tokens[start:q])
    then = _ternary(tokens[q + 1 : colon])
    other = _ternary(tokens[colon + 1 :])
    lead = " " if head and not head.endswith(" ") else ""
    return f"{head}{lead}(({then}) if ({cond}) else ({other}))"


def _coalesce(tokens: list[_Tok]) -> str:
    idx = [i for i, t in enumerate(tokens) if t.kind == "op" and t.text in ("??", "???")]
    if not idx:
        return _text(tokens)
    start = 0
    for i in range(idx[0] - 1, -1, -1):
        t = tokens[i]
        if (t.kind == "op" and t.text in (":", "=")) or (
            t.kind == "name" and t.text in _BOUNDARY_NAMES
        ):
            start = i + 1
            break
    head = _text(tokens[:start])
    pieces: list[list[_Tok]] = []
    prev = start
    for i in idx:
        pieces.append(tokens[prev:i])
        prev = i + 1
    pieces.append(tokens[prev:])
    for n, i in enumerate(idx):
        if _blank(pieces[n]):
            raise _RewriteError(f"'{tokens[i].text}' needs a value on its left", tokens[i].pos)
        if _blank(pieces[n + 1]):
            raise _RewriteError(f"'{tokens[i].text}' needs a value on its right", tokens[i].pos)
    expr = f"({_text(pieces[-1]).strip()})"
    for n in range(len(pieces) - 2, -1, -1):
        name = "plait_coalesce" if tokens[idx[n]].text == "??" else "plait_undefined_coalesce"
        expr = f"(({_text(pieces[n]).strip()}) | {name}({expr}))"
    lead = " " if head and not head.endswith(" ") else ""
    return f"{head}{lead}{expr}"
