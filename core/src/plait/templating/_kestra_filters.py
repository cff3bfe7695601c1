"""Kestra's and Pebble's filters and functions that Jinja lacks, with their Java semantics.

The reference is Kestra's ``io.kestra.core.runners.pebble`` filters and Pebble's core extension;
where Python cannot behave exactly the same, the closest behaviour is chosen and the difference
is documented in docs/templating.md. Every failure is one ``ValueError`` whose message starts
with the filter's name (``number: cannot parse 'abc' as a number``); the engine reports it with
the template. An undefined input raises the usual undefined error.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import importlib
import json
import os
import re
import time
import uuid as _uuid
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any, NoReturn
from urllib.parse import quote_plus, unquote_plus

import regex as _re  # type: ignore[import-untyped]  # has no type stubs
from jinja2 import Undefined

from plait.limits import limits
from plait.templating import _filters as f
from plait.templating import _jq
from plait.templating import _limits as lim

# -- helpers ---------------------------------------------------------------------------------


def _fail(name: str, reason: str) -> NoReturn:
    raise ValueError(f"{name}: {reason}")


def _check_defined(value: Any) -> None:
    if isinstance(value, Undefined):
        str(value)  # raises, naming the undefined path


def _kind(value: Any) -> str:
    """A short name for the type of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime):
        return "a datetime"
    return type(value).__name__


def _text(value: Any) -> str:
    """``value`` as text, the way Kestra prints it (``true``, compact JSON, ISO dates)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list | tuple):
        return f.to_json(value)
    if isinstance(value, datetime):
        return f.format_datetime(value)
    if isinstance(value, date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f.format_duration(value)
    return str(value)


def _require_text(name: str, what: str, value: Any) -> str:
    _check_defined(value)
    if value is None:
        _fail(name, f"expects an argument '{what}'")
    if not isinstance(value, str):
        _fail(name, f"the argument '{what}' must be text, got {_kind(value)}")
    return value


def _require_int(name: str, what: str, value: Any, *, truncate: bool = False) -> int:
    """An integer argument; ``truncate`` accepts floats as Java's ``Number.intValue()`` does."""
    _check_defined(value)
    if value is None:
        _fail(name, f"expects an argument '{what}'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(name, f"the argument '{what}' must be a number, got {_kind(value)}")
    if isinstance(value, float) and not truncate and not value.is_integer():
        _fail(name, f"the argument '{what}' must be a whole number, got {value!r}")
    return int(value)


# -- Java regular expressions ------------------------------------------------------------------


def _translate_regex(pattern: str) -> str:
    """Rewrite the Java forms Python's ``re`` lacks: ``(?<name>...)``, ``\\k<name>``, ``\\z``."""
    out: list[str] = []
    index, size, in_class = 0, len(pattern), False
    while index < size:
        char = pattern[index]
        if char == "\\" and index + 1 < size:
            following = pattern[index + 1]
            if not in_class and following == "k" and pattern.startswith("<", index + 2):
                end = pattern.find(">", index + 3)
                if end > 0:
                    out.append(f"(?P={pattern[index + 3 : end]})")
                    index = end + 1
                    continue
            out.append("\\Z" if following == "z" and not in_class else pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            index += 1
            if pattern.startswith("^", index):
                out.append("^")
                index += 1
            if pattern.startswith("]", index):
                out.append("]")
                index += 1
            continue
        elif (
            char == "("
            and pattern.startswith("?<", index + 1)
            and not pattern.startswith(("?<=", "?<!"), index + 1)
        ):
            out.append("(?P<")
            index += 3
            continue
        out.append(char)
        index += 1
    return "".join(out)


# Patterns run in the ``regex`` module (re-compatible, version 0 syntax), which can stop a match
# after ``template_regex_seconds``: a backtracking pattern such as ``^(a+)+$`` cannot hang.


@functools.lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" FutureWarnings on Java classes
        return _re.compile(_translate_regex(pattern))


def _regex(name: str, pattern: str, what: str = "regex") -> Any:
    try:
        return _compile_regex(pattern)
    except _re.error as error:
        _fail(name, f"invalid {what} {pattern!r}: {error}")


def _timed(name: str, run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args, timeout=...)``: a match method of a compiled pattern, time-limited."""
    try:
        return run(*args, timeout=lim.regex_timeout())
    except TimeoutError:
        raise lim.regex_timed_out(name) from None


def _bounded_sub(name: str, pattern: Any, expand: Callable[[Any], str], text: str) -> str:
    """``pattern.sub(expand, text)``, refused once the replacements grow past the string
    limit (``'x' | regexReplace('', '$0$0$0')`` would multiply the text)."""
    limit = limits().template_max_string
    grown = 0

    def counted(match: Any) -> str:
        nonlocal grown
        out = expand(match)
        grown += len(out) - (match.end() - match.start())
        if len(text) + grown > limit:
            lim.check_string(len(text) + grown, f"the result of '{name}'")
        return out

    result: str = _timed(name, pattern.sub, counted, text)
    return result


def _java_replacement(name: str, pattern: Any, replacement: str) -> Callable[[Any], str]:
    """A ``re.sub`` callback expanding a Java replacement: ``$1``, ``${name}``, ``\\$``."""
    parts: list[str | int] = []
    literal: list[str] = []
    index, size = 0, len(replacement)
    while index < size:
        char = replacement[index]
        if char == "\\":
            index += 1
            if index == size:
                _fail(name, f"character to be escaped is missing in replacement {replacement!r}")
            literal.append(replacement[index])
            index += 1
            continue
        if char != "$":
            literal.append(char)
            index += 1
            continue
        index += 1
        if index == size:
            _fail(name, f"illegal group reference in replacement {replacement!r}")
        group: int | str
        if replacement[index] == "{":
            end = replacement.find("}", index)
            if end < 0:
                _fail(name, f"named group is missing its '}}' in replacement {replacement!r}")
            group = replacement[index + 1 : end]
            if group not in pattern.groupindex:
                _fail(name, f"no group named {group!r} in the regex")
            index = end + 1
        else:
            if not replacement[index].isdigit():
                _fail(name, f"illegal group reference in replacement {replacement!r}")
            number = int(replacement[index])
            if number > pattern.groups:
                _fail(name, f"no group {number} in the regex (it has {pattern.groups})")
            index += 1
            while index < size and replacement[index].isdigit():
                longer = number * 10 + int(replacement[index])
                if longer > pattern.groups:
                    break
                number = longer
                index += 1
            group = number
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(group if isinstance(group, int) else "\0" + group)
    if literal:
        parts.append("".join(literal))

    def expand(match: Any) -> str:
        out: list[str] = []
        for part in parts:
            if isinstance(part, int):
                out.append(match.group(part) or "")
            elif part.startswith("\0"):
                out.append(match.group(part[1:]) or "")
            else:
                out.append(part)
        return "".join(out)

    return expand


# -- JSON, YAML and jq -------------------------------------------------------------------------


async def jq_filter(value: Any, expression: Any = None) -> Any:
    """Kestra's ``jq``: the list of every result of ``expression`` applied to ``value``.

    Text is parsed as JSON first; any other value is converted to JSON (dates to ISO text). The
    program runs in a worker process with a time and memory cap (plait.templating._jq).
    """
    _check_defined(value)
    if value is None:
        return None
    expression = _require_text("jq", "expression", expression)
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as error:
            _fail("jq", f"the input is text that is not JSON ({error.msg} at char {error.pos})")
        source = value
    else:
        try:
            source = f.to_json(value)
        except (TypeError, ValueError) as error:
            _fail("jq", f"cannot convert the input to JSON: {error}")
    try:
        return await asyncio.to_thread(_jq.run, expression, source)
    except _jq.JqLimitError as error:
        raise lim.TemplateLimitError(f"jq: {error}") from None
    except _jq.JqError as error:
        if error.kind == "compile":
            lines = error.message.strip().splitlines() or ["invalid expression"]
            reason = lines[0].removeprefix("jq: error: ").rstrip(":")
            _fail("jq", f"invalid expression {expression!r}: {reason}")
        _fail("jq", f"{expression!r} failed: {error.message}")


@functools.cache
def _yaml_dumper() -> Any:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Jackson's YAML output: indented lists, double quotes when quotes are needed."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

        def choose_scalar_style(self) -> str:
            style: str = super().choose_scalar_style()
            return '"' if style == "'" else style

    return Dumper


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    from plait.safeyaml import LimitedComposer

    class Loader(LimitedComposer, yaml.SafeLoader):
        """YAML 1.1 as PyYAML reads it, except that dates and times stay text (as in Jackson),
        within the ``yaml_*`` limits (aliases, expanded size, depth)."""

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def to_yaml(value: Any) -> str:
    """Kestra's ``yaml`` filter: YAML text of a value; ``null`` for null."""
    _check_defined(value)
    if value is None:
        return "null"
    import yaml

    try:
        plain = json.loads(f.to_json(value))  # datetimes to ISO text, tuples and sets to lists
    except (TypeError, ValueError) as error:
        _fail("yaml", f"cannot convert {_kind(value)} to YAML: {error}")
    text: str = yaml.dump(
        plain,
        Dumper=_yaml_dumper(),
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**31 - 1,
    )
    return text.removesuffix("...\n")


def from_yaml(yaml: Any = None) -> Any:
    """Kestra's ``yaml(yaml)`` function: parse YAML text."""
    _check_defined(yaml)
    if not isinstance(yaml, str):
        _fail("yaml", f"expects YAML text, got {_kind(yaml)}")
    pyyaml = importlib.import_module("yaml")
    try:
        return pyyaml.load(yaml, Loader=_yaml_loader())  # a SafeLoader subclass
    except pyyaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        context = getattr(error, "context", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = f"{context}, {problem}" if context else problem
        _fail("yaml", f"not valid YAML ({reason}{where})")


# -- numbers ---------------------------------------------------------------------------------

_INTEGER = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_RANGES = {"INT": 31, "LONG": 63}
_NUMBER_TYPES = ("INT", "FLOAT", "LONG", "DOUBLE", "BIGDECIMAL", "BIGINTEGER")


def _decode_integer(text: str) -> int | None:
    """Java's ``Long.decode``: decimal, hexadecimal (``0x``, ``#``) or octal (leading ``0``)."""
    match = _INTEGER.fullmatch(text)
    if match is None:
        return None
    sign, body = match.groups()
    if body[:2] in ("0x", "0X"):
        number = int(body[2:], 16)
    elif body.startswith("#"):
        number = int(body[1:], 16)
    elif body.startswith("0") and len(body) > 1:
        number = int(body[1:], 8)
    else:
        number = int(body)
    return -number if sign == "-" else number


def _decimal(text: str) -> float | None:
    if _DECIMAL.fullmatch(text) is None:
        return None
    number = float(text)
    return None if number in (float("inf"), float("-inf")) else number


def _create_number(text: str) -> int | float | None:
    """Apache Commons ``NumberUtils.createNumber``, the type-less ``number`` filter."""
    if re.match(r"[+-]?(?:0[xX]|#)", text):
        return _decode_integer(text)
    last = text[-1:]
    if last and not last.isdigit() and last != ".":  # a type qualifier: 12L, 1.5f, 2d
        numeric = text[:-1]
        if last in "lL":
            return _decode_integer(numeric) if re.fullmatch(r"-?[0-9]+", numeric) else None
        return _decimal(numeric) if last in "fFdD" else None
    if not any(c in text for c in ".eE"):
        return _decode_integer(text)
    return _decimal(text)


def number(value: Any, type: Any = None) -> Any:
    """Kestra's ``number``: parse text as a number, the type inferred or named by ``type``."""
    _check_defined(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        _fail("number", f"expected text, got {_kind(value)}")
    text = value if isinstance(value, str) else _text(value)
    if type is None:
        result = _create_number(text)
        if result is None:
            _fail("number", f"cannot parse {text!r} as a number")
        return result
    name = _require_text("number", "type", type).upper()
    if name not in _NUMBER_TYPES:
        _fail("number", f"unknown type {type!r} (expected one of {', '.join(_NUMBER_TYPES)})")
    parsed: int | float | None
    if name in ("FLOAT", "DOUBLE"):
        stripped = text.strip()
        parsed = _decimal(stripped[:-1] if stripped[-1:] in ("f", "F", "d", "D") else stripped)
    elif name == "BIGDECIMAL":
        parsed = _decimal(text)
    else:
        parsed = _decode_integer(text)
        bits = _INT_RANGES.get(name)
        if parsed is not None and bits is not None and not -(2**bits) <= parsed < 2**bits:
            _fail("number", f"{text!r} is out of range for {name}")
    if parsed is None:
        _fail("number", f"cannot parse {text!r} as {name}")
    return parsed


def class_name(value: Any) -> str | None:
    """Kestra's ``className``: the Java class Kestra would hold for such a value."""
    _check_defined(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return "java.lang.Integer"
        return "java.lang.Long" if -(2**63) <= value < 2**63 else "java.math.BigInteger"
    names: list[tuple[type, str]] = [
        (float, "java.lang.Double"),
        (str, "java.lang.String"),
        (dict, "java.util.LinkedHashMap"),
        (list, "java.util.ArrayList"),
        (tuple, "java.util.ArrayList"),
        (datetime, "java.time.ZonedDateTime"),
        (date, "java.time.LocalDate"),
        (time_of_day, "java.time.LocalTime"),
        (timedelta, "java.time.Duration"),
    ]
    for cls, java in names:
        if isinstance(value, cls):
            return java
    return type(value).__name__


def to_string(value: Any) -> str | None:
    """``string``: a value as text, printed the Kestra way (``true``, compact JSON, ISO dates)."""
    _check_defined(value)
    return None if value is None else _text(value)


# -- text --------------------------------------------------------------------------------------


def _substring_input(name: str, value: Any, separator: Any) -> tuple[str, str] | None:
    _check_defined(value)
    if value is None:
        return None
    return _text(value), _require_text(name, "separator", separator)


def substring_before(value: Any, separator: Any = None) -> str | None:
    """Text before the first ``separator``; all of it when absent (``StringUtils``)."""
    args = _substring_input("substringBefore", value, separator)
    if args is None:
        return None
    text, sep = args
    return text.partition(sep)[0] if sep else ""


def substring_after(value: Any, separator: Any = None) -> str | None:
    """Text after the first ``separator``; empty when absent."""
    args = _substring_input("substringAfter", value, separator)
    if args is None:
        return None
    text, sep = args
    position = text.find(sep)
    return "" if position < 0 else text[position + len(sep) :]


def substring_before_last(value: Any, separator: Any = None) -> str | None:
    """Text before the last ``separator``; all of it when absent or empty."""
    args = _substring_input("substringBeforeLast", value, separator)
    if args is None:
        return None
    text, sep = args
    position = text.rfind(sep) if sep else -1
    return text if position < 0 else text[:position]


def substring_after_last(value: Any, separator: Any = None) -> str | None:
    """Text after the last ``separator``; empty when absent or empty."""
    args = _substring_input("substringAfterLast", value, separator)
    if args is None:
        return None
    text, sep = args
    position = text.rfind(sep) if sep else -1
    return "" if position < 0 else text[position + len(sep) :]


def split(value: Any, delimiter: Any = None, limit: Any = None) -> list[str] | None:
    """Pebble's ``split``: Java's ``String.split(regex, limit)``.

    ``limit`` > 0 gives at most that many parts (the last holds the rest); < 0 keeps trailing
    empty parts; 0 or none drops them.
    """
    _check_defined(value)
    if value is None:
        return None
    if not isinstance(value, str):
        _fail("split", f"expected text, got {_kind(value)}")
    pattern = _regex("split", _require_text("split", "delimiter", delimiter), "delimiter")
    cap = 0 if limit is None else _require_int("split", "limit", limit, truncate=True)
    parts: list[str] = []
    index = 0
    most = limits().template_max_items
    try:
        for match in _timed("split", pattern.finditer, value):
            if cap > 0 and len(parts) >= cap - 1:
                break
            if index == 0 and match.start() == 0 and match.end() == 0:
                continue  # a zero-width match at the start gives no leading empty part
            parts.append(value[index : match.start()])
            index = match.end()
            if len(parts) >= most:
                lim.check_items(len(parts) + 1, "the result of 'split'")
    except TimeoutError:
        raise lim.regex_timed_out("split") from None
    if index == 0 and not parts:
        return [value]
    parts.append(value[index:])
    if cap == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _escape_all(value: Any, escape: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _escape_all(v, escape) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_all(v, escape) for v in value]
    return None if value is None else escape(_text(value))


_ESCAPES: dict[str, tuple[str, str]] = {
    "single": ("'", "\\'"),
    "double": ('"', '\\"'),
    "shell": ("'", "'\\''"),
}


def escape_char(value: Any, type: Any = None) -> Any:
    """Kestra's ``escapeChar``: escape quotes for a single-, double-quoted or shell string."""
    _check_defined(value)
    if value is None:
        return None
    kind = _require_text("escapeChar", "type", type).lower()
    if kind not in _ESCAPES:
        _fail("escapeChar", f"unknown type {type!r} (expected 'single', 'double' or 'shell')")
    old, new = _ESCAPES[kind]
    return _escape_all(value, lambda text: text.replace(old, new))


def _indent(name: str, value: Any, amount: Any, prefix: Any, leading: bool) -> str | None:
    _check_defined(value)
    if value is None:
        return None
    text = _text(value)
    if not text:
        return text
    count = _require_int(name, "amount", amount)
    if count < 0:
        _fail(name, f"the amount must be 0 or more, got {count}")
    pad = _require_text(name, "prefix", prefix) * count
    newline = next((nl for nl in ("\r\n", "\n\r", "\n", "\r") if nl in text), "\n")
    if leading:
        text = newline + text
    return text.replace(newline, newline + pad)


def indent(value: Any, amount: Any = None, prefix: Any = " ") -> str | None:
    """Kestra's ``indent``: every line but the first gets ``amount`` times ``prefix``."""
    return _indent("indent", value, amount, prefix, leading=False)


def nindent(value: Any, amount: Any = None, prefix: Any = " ") -> str | None:
    """Kestra's ``nindent``: a newline, then every line indented."""
    return _indent("nindent", value, amount, prefix, leading=True)


def replace(
    value: Any,
    old: Any = None,
    new: Any = None,
    count: Any = None,
    regexp: Any = False,
    replace_pairs: Any = None,
) -> Any:
    """Pebble's ``replace({'old': 'new'}, regexp=false)``, or Jinja's ``replace(old, new, n)``.

    With a map, every key is replaced by its value in the text (in lists and map values too, as
    Kestra does); ``regexp=true`` makes the keys Java regexes and the values Java replacements.
    """
    pairs = replace_pairs if replace_pairs is not None else old
    if isinstance(pairs, Mapping):
        if replace_pairs is None and new is not None:
            regexp = new  # replace({...}, true): Kestra's second argument is ``regexp``
        _check_defined(value)
        if value is None:
            return None
        rules: list[Callable[[str], str]] = []
        for key, replacement in pairs.items():
            _check_defined(replacement)
            if regexp:
                pattern = _regex("replace", _text(key))
                expand = _java_replacement("replace", pattern, _text(replacement))
                rules.append(functools.partial(_bounded_sub, "replace", pattern, expand))
            else:
                rules.append(functools.partial(_plain_replace, _text(key), _text(replacement)))

        def apply(text: str) -> str:
            for rule in rules:
                text = rule(text)
            return text

        return _escape_all(value, apply)
    if replace_pairs is not None or regexp:
        _fail("replace", f"expects a map of replacements, got {_kind(pairs)}")
    _check_defined(value)
    if old is None or new is None:
        _fail("replace", "expects a map ({'old': 'new'}) or two arguments (old, new)")
    _check_defined(old)
    _check_defined(new)
    times = -1 if count is None else _require_int("replace", "count", count)
    return str(value).replace(str(old), str(new), times)


def _plain_replace(old: str, new: str, text: str) -> str:
    lim.check_replace(text, old, new)
    return text.replace(old, new)


def regex_match(value: Any, regex: Any = None) -> bool:
    """Kestra's ``regexMatch``: whether the regex is found anywhere in the text."""
    _check_defined(value)
    pattern = _regex("regexMatch", _require_text("regexMatch", "regex", regex))
    return value is not None and _timed("regexMatch", pattern.search, _text(value)) is not None


def regex_replace(value: Any, regex: Any = None, replacement: Any = None) -> str | None:
    """Kestra's ``regexReplace``: replace every match; ``$1`` / ``${name}`` insert groups."""
    _check_defined(value)
    if value is None:
        return None
    pattern = _regex("regexReplace", _require_text("regexReplace", "regex", regex))
    _check_defined(replacement)
    if replacement is None:
        _fail("regexReplace", "expects an argument 'replacement'")
    expand = _java_replacement("regexReplace", pattern, _text(replacement))
    return _bounded_sub("regexReplace", pattern, expand, _text(value))


def regex_extract(value: Any, regex: Any = None, group: Any = 0) -> str | None:
    """Kestra's ``regexExtract``: the first match (or its ``group``), null when none."""
    _check_defined(value)
    if value is None:
        return None
    pattern = _regex("regexExtract", _require_text("regexExtract", "regex", regex))
    index = 0 if group is None else _require_int("regexExtract", "group", group, truncate=True)
    if index < 0:
        _fail("regexExtract", f"group {index} is out of bounds: it must be 0 or more")
    match = _timed("regexExtract", pattern.search, _text(value))
    if match is None:
        return None
    if index > pattern.groups:
        _fail(
            "regexExtract",
            f"group {index} is out of bounds: the regex has {pattern.groups} group(s)",
        )
    found: str | None = match.group(index)
    return found


# -- encodings and hashes ----------------------------------------------------------------------


def base64_encode(value: Any) -> str | None:
    """Pebble's ``base64encode``: the UTF-8 bytes of the text, in standard Base64."""
    _check_defined(value)
    if value is None:
        return None
    return base64.b64encode(_text(value).encode("utf-8")).decode("ascii")


_BASE64 = re.compile(r"[A-Za-z0-9+/]*(={0,2})")


def base64_decode(value: Any) -> str | None:
    """Pebble's ``base64decode``: Base64 text to UTF-8 text; padding is optional."""
    _check_defined(value)
    if value is None:
        return None
    if not isinstance(value, str):
        _fail("base64decode", f"expected text, got {_kind(value)}")
    match = _BASE64.fullmatch(value)
    body = len(value) - len(match.group(1)) if match else 0
    if match is None or body % 4 == 1 or (match.group(1) and len(value) % 4):
        _fail("base64decode", f"not valid Base64: {f.abbreviate(value, 40)!r}")
    data = base64.b64decode(value[:body] + "=" * (-body % 4))
    return data.decode("utf-8", errors="replace")


def _hasher(name: str, algorithm: str) -> Callable[[Any], str | None]:
    def digest(value: Any) -> str | None:
        _check_defined(value)
        if value is None:
            return None
        if not isinstance(value, str):
            _fail(name, f"expected text to hash, got {_kind(value)}")
        return hashlib.new(algorithm, value.encode("utf-8")).hexdigest()

    digest.__name__ = name
    digest.__doc__ = f"``{name}``: the hexadecimal {algorithm.upper()} digest of UTF-8 text."
    return digest


md5 = _hasher("md5", "md5")
sha1 = _hasher("sha1", "sha1")
sha256 = _hasher("sha256", "sha256")
sha512 = _hasher("sha512", "sha512")

_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


def url_encode(value: Any) -> str | None:
    """Pebble's ``urlencode`` for text (Java's ``URLEncoder``: space is ``+``); Jinja's for maps."""
    _check_defined(value)
    if value is None:
        return None
    if isinstance(value, Mapping | list | tuple):
        from jinja2.filters import do_urlencode

        return do_urlencode(value)
    return quote_plus(_text(value), safe="*").replace("~", "%7E")


def url_decode(value: Any) -> str | None:
    """Kestra's ``urldecode`` (Java's ``URLDecoder``): ``+`` is a space, ``%XX`` UTF-8 bytes."""
    _check_defined(value)
    if value is None:
        return None
    if not isinstance(value, str):
        _fail("urldecode", f"expected text, got {_kind(value)}")
    bad = _BAD_ESCAPE.search(value)
    if bad is not None:
        sample = value[bad.start() : bad.start() + 3]
        _fail("urldecode", f"invalid escape {sample!r} (expected % and two hex digits)")
    return unquote_plus(value, errors="replace")


# -- collections -------------------------------------------------------------------------------


def _require_list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        _fail(name, f"expected a list, got {_kind(value)}")
    return list(value)


def _distinct(items: list[Any]) -> list[Any]:
    """Drop repeated items, keeping the first; ``1``, ``1.0`` and ``true`` stay distinct."""
    out: list[Any] = []
    seen: set[Any] = set()
    for item in items:
        try:
            key = (type(item), item)
            hash(key)
        except TypeError:
            if not any(type(o) is type(item) and o == item for o in out):
                out.append(item)
            continue
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def distinct(value: Any) -> list[Any] | None:
    """Kestra's ``distinct``: the list without repeated items; fails on anything else."""
    _check_defined(value)
    if value is None:
        return None
    return _distinct(_require_list("distinct", value))


def uniq(value: Any) -> Any:
    """Kestra's ``uniq``: like ``distinct``, but other values pass through unchanged."""
    _check_defined(value)
    return _distinct(list(value)) if isinstance(value, list | tuple) else value


def flatten(value: Any) -> list[Any] | None:
    """Kestra's ``flatten``: lists inside the list are spliced in (one level)."""
    _check_defined(value)
    if value is None:
        return None
    out: list[Any] = []
    for item in _require_list("flatten", value):
        if isinstance(item, list | tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


def chunk(value: Any, size: Any = None) -> list[list[Any]] | None:
    """Kestra's ``chunk``: consecutive sub-lists of ``size`` items (the last may be shorter)."""
    _check_defined(value)
    if value is None:
        return None
    items = _require_list("chunk", value)
    step = _require_int("chunk", "size", size, truncate=True)
    if step <= 0:
        _fail("chunk", f"the size must be greater than 0, got {step}")
    return [items[i : i + step] for i in range(0, len(items), step)]


def merge(value: Any, items: Any = None) -> Any:
    """Pebble's ``merge``: the value's type decides; maps merge (right wins), lists concatenate.

    A list merged into a map adds each item as a key mapped to itself; a map merged into a list
    adds one single-entry map per entry.
    """
    _check_defined(value)
    _check_defined(items)
    if value is None:
        if items is None:
            _fail("merge", "the two values to merge are null")
        return items
    if items is None:
        return value
    if isinstance(value, Mapping):
        merged = dict(value)
        if isinstance(items, Mapping):
            merged.update(items)
        elif isinstance(items, list | tuple):
            for item in items:
                try:
                    merged[item] = item
                except TypeError:
                    _fail("merge", f"{_kind(item)} cannot be a key of a map")
        else:
            _fail("merge", f"only a map or a list can be merged into a map, got {_kind(items)}")
        return merged
    if isinstance(value, list | tuple):
        if isinstance(items, Mapping):
            return [*value, *({k: v} for k, v in items.items())]
        if isinstance(items, list | tuple):
            return [*value, *items]
        _fail("merge", f"only a map or a list can be merged into a list, got {_kind(items)}")
    _fail("merge", f"expected a map or a list, got {_kind(value)}")


def rsort(value: Any) -> list[Any] | None:
    """Pebble's ``rsort``: the list sorted in descending order."""
    _check_defined(value)
    if value is None:
        return None
    items = _require_list("rsort", value)
    try:
        return sorted(items, reverse=True)
    except TypeError:
        kinds = sorted({_kind(item) for item in items})
        _fail("rsort", f"cannot compare {' and '.join(kinds)}")


# -- dates and ids -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"\d{2}:\d{2}:\d{2}[.,](\d{7,})")


def _epoch_nanos(value: Any, named: dict[str, Any], name: str) -> int:
    """Nanoseconds since 1970-01-01 UTC; ISO text keeps digits beyond the microsecond."""
    nanos = (f.date_instant(value, named, name) - _EPOCH) // timedelta(microseconds=1) * 1000
    if isinstance(value, str) and not named.get("existingFormat"):
        extra = _FRACTION.search(value)
        if extra is not None:
            nanos += int(extra.group(1)[6:9].ljust(3, "0"))
    return nanos


def timestamp_milli(value: Any, **named: Any) -> int:
    """Unix time in milliseconds (``timeZone``, ``existingFormat`` as ``timestamp``)."""
    return _epoch_nanos(value, named, "timestampMilli") // 1_000_000


def timestamp_micro(value: Any, **named: Any) -> int:
    """Unix time in microseconds."""
    return _epoch_nanos(value, named, "timestampMicro") // 1_000


def timestamp_nano(value: Any, **named: Any) -> int:
    """Unix time in nanoseconds."""
    return _epoch_nanos(value, named, "timestampNano")


def uuid() -> str:
    """Kestra's ``uuid()``: a random, time-ordered UUID (version 7), as text."""
    millis = time.time_ns() // 1_000_000 & (2**48 - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    bits = (millis << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    bits |= (0b10 << 62) | (rand & (2**62 - 1))
    return str(_uuid.UUID(int=bits))
