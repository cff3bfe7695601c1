"""Turning pydantic's validation errors into located, human problems."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

import pydantic
from plait_sdk import UserError

from plait.safeyaml import Document, Path, dotted
from plait.templating import is_template


def field_names(model: type[pydantic.BaseModel]) -> list[str]:
    """The names a user may write for a model's fields (aliases, camelCase)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def resolve_loc(data: Any, base: Path, loc: tuple[Any, ...], kind: str = "") -> Path:
    """Map a pydantic error location onto the user's data, dropping union/tag segments."""
    path = list(base)
    current = data
    missing = object()
    for index, part in enumerate(loc):
        if kind == "missing" and index == len(loc) - 1 and isinstance(current, dict):
            path.append(part)  # the missing field itself, whatever its name
            break
        if part == "properties" and isinstance(current, dict) and part not in current:
            continue  # TaskSpec keeps a type's properties apart; the user wrote them inline
        if isinstance(current, dict):
            if isinstance(part, str) and part in current:
                path.append(part)
                current = current[part]
            elif isinstance(part, str) and _is_branch_label(part, current):
                continue  # a discriminator tag ('constant') or a union branch ('str')
            else:
                path.append(part)  # a missing key: the field being reported
                current = missing
        elif isinstance(current, list):
            if isinstance(part, int) and 0 <= part < len(current):
                path.append(part)
                current = current[part]
            # else a union branch label such as 'list[str]'
        elif current is missing:
            path.append(part)
        # else: below a scalar every segment is a union branch label, not a user key
    return tuple(path)


_TYPE_LABELS = frozenset(
    {
        "str",
        "int",
        "float",
        "bool",
        "bytes",
        "list",
        "dict",
        "none",
        "decimal",
        "date",
        "datetime",
        "time",
        "timedelta",
        "any",
        "set",
        "tuple",
        "enum",
        "literal",
        "url",
        "uuid",
    }
)


def _is_branch_label(part: str, mapping: dict[str, Any]) -> bool:
    """Pydantic names union branches ('str', 'list[str]', 'function-after[...]') in locations."""
    if mapping.get("type") == part:
        return True
    return part in _TYPE_LABELS or "[" in part or "-" in part


def reason_of(error: Any, model: type[pydantic.BaseModel] | None) -> str:
    kind = error["type"]
    msg: str = error["msg"]
    given = error.get("input")
    loc = error["loc"]
    last = loc[-1] if loc else ""
    if kind == "missing":
        return "required property is missing"
    if kind == "extra_forbidden":
        names = field_names(model) if model is not None else []
        return f"unknown property '{last}'{did_you_mean(str(last), names)}"
    if kind in ("time_delta_parsing", "time_delta_type"):
        hint = ""
        if isinstance(given, str) and re.fullmatch(r"\d+[smhSMH]", given.strip()):
            hint = f" (write PT{given.strip().upper()})"
        elif isinstance(given, str) and re.fullmatch(r"\d+[dD]", given.strip()):
            hint = f" (write P{given.strip().upper()})"
        return f"not a valid ISO-8601 duration: {given!r}{hint}"
    if kind == "string_pattern_mismatch":
        return f"{given!r} does not match the pattern {error.get('ctx', {}).get('pattern')}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "too_short":
        need = error.get("ctx", {}).get("min_length", 1)
        return f"needs at least {need} item{'s' if need != 1 else ''}"
    if kind == "union_tag_not_found":
        return "a 'type' is required here"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        return msg[len("Assertion failed, ") :]
    text = msg[0].lower() + msg[1:] if msg else kind
    text = text.replace("input should be", "should be")
    if given is not None and not isinstance(given, dict | list):
        shown = repr(given)
        text += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return text


def problems_from(
    exc: pydantic.ValidationError,
    *,
    doc: Document,
    data: Any,
    base: Path,
    file: str | None,
    model: type[pydantic.BaseModel] | None = None,
    lenient: bool = False,
) -> list[UserError]:
    """Located problems of a validation error; with ``lenient``, templated inputs are skipped."""
    found: dict[tuple[Path, str], UserError] = {}
    by_path: dict[Path, list[str]] = {}
    for error in exc.errors(include_url=False):
        given = error.get("input")
        templated = isinstance(given, str) and is_template(given)
        if lenient and templated and error["type"] not in ("extra_forbidden", "missing"):
            continue
        path = resolve_loc(data, base, tuple(error["loc"]), error["type"])
        reason = reason_of(error, model if error["type"] == "extra_forbidden" else None)
        by_path.setdefault(path, []).append(reason)
        pos = doc.keys.get(path) if error["type"] == "extra_forbidden" else None
        pos = pos or doc.position(path)
        found.setdefault(
            (path, reason),
            UserError(
                reason,
                file=file,
                line=pos.line if pos else None,
                column=pos.column if pos else None,
                field=dotted(path) or None,
            ),
        )
    # A union reports one error per branch; say it once.
    merged: list[UserError] = []
    seen_paths: set[Path] = set()
    for (path, _reason), problem in found.items():
        reasons = by_path[path]
        if (
            len(reasons) > 1
            and path not in seen_paths
            and all(r.startswith("should be") or " should be " in r for r in reasons)
        ):
            seen_paths.add(path)
            kinds = [r.split(" (got")[0].removeprefix("should be ") for r in reasons]
            got = reasons[0].partition(" (got ")[2]
            problem.reason = "should be " + " or ".join(dict.fromkeys(kinds))
            if got:
                problem.reason += f" (got {got}"
            merged.append(problem)
        elif path not in seen_paths:
            merged.append(problem)
    return merged
