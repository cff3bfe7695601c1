"""Typed flow inputs: checking their declarations, and coercing given values at execution time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import yaml
from plait_sdk import UserError, ValidationError
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from plait.flows._model import Flow, Input, InputType
from plait.safeyaml import Path, YamlLimitError, safe_load

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]*$")
_CHOICES = (InputType.ENUM, InputType.SELECT, InputType.MULTISELECT)
_BOUNDED = (InputType.INT, InputType.FLOAT, InputType.DURATION)
_DATED = (InputType.DATETIME, InputType.DATE, InputType.TIME)


class InputError(ValueError):
    """A value does not fit its input's type or validators."""


def check_declarations(inputs: list[tuple[int, Input]]) -> list[tuple[Path, str]]:
    """Problems of input declarations (index, declaration): validators that do not apply..."""
    problems: list[tuple[Path, str]] = []
    ids = {spec.id for _n, spec in inputs}
    for n, spec in inputs:
        at: Path = ("inputs", n)
        t = spec.type
        if t in _CHOICES and not spec.values:
            problems.append(((*at, "values"), f"a {t.value} input needs a list of values"))
        if t is InputType.ARRAY and spec.item_type is None:
            problems.append(((*at, "itemType"), "an ARRAY input needs an itemType"))
        if spec.values is not None and t not in _CHOICES:
            problems.append(
                ((*at, "values"), f"values only apply to ENUM, SELECT, MULTISELECT, not {t.value}")
            )
        if spec.validator is not None:
            if t is not InputType.STRING:
                problems.append(
                    ((*at, "validator"), f"validator only applies to STRING, not {t.value}")
                )
            else:
                try:
                    re.compile(spec.validator)
                except re.error as error:
                    problems.append(
                        ((*at, "validator"), f"not a valid regular expression: {error}")
                    )
        for bound in ("min", "max"):
            if getattr(spec, bound) is not None and t not in _BOUNDED:
                problems.append(
                    ((*at, bound), f"{bound} only applies to INT, FLOAT, DURATION, not {t.value}")
                )
        for bound in ("after", "before"):
            if getattr(spec, bound) is not None and t not in _DATED:
                problems.append(
                    ((*at, bound), f"{bound} only applies to DATETIME, DATE, TIME, not {t.value}")
                )
        try:
            low = _convert(spec, spec.min, bare=True) if spec.min is not None else None
            high = _convert(spec, spec.max, bare=True) if spec.max is not None else None
            if low is not None and high is not None and low > high:
                problems.append(((*at, "min"), "min is greater than max"))
        except InputError as error:
            problems.append(((*at, "min"), str(error)))
        if "." in spec.id and spec.id.split(".", 1)[0] in ids:
            problems.append(
                ((*at, "id"), f"'{spec.id}' is inside input '{spec.id.split('.', 1)[0]}'")
            )
        if spec.defaults is not None and not problems_for(at, problems):
            try:
                coerce_value(spec, default_of(spec))
            except InputError as error:
                problems.append(((*at, "defaults"), f"the default does not fit: {error}"))
    return problems


def problems_for(at: Path, problems: list[tuple[Path, str]]) -> bool:
    return any(p[: len(at)] == at for p, _ in problems)


def coerce_inputs(
    flow: Flow, given: Mapping[str, Any], *, file: str | None = None
) -> dict[str, Any]:
    """The execution's inputs: typed, defaulted, validated; every problem at once.

    Values may be strings (from ``--input k=v`` or a form) or JSON values. The result is
    JSON-friendly: dates, times and durations as ISO-8601 strings, as Kestra passes them to
    templates.
    """
    problems: list[UserError] = []
    declared = {i.id: i for i in flow.inputs}
    result: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            hint = ""
            import difflib

            close = difflib.get_close_matches(name, list(declared), n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            problems.append(
                UserError(f"unknown input '{name}'{hint}", file=file, field=f"inputs.{name}")
            )
    for spec in flow.inputs:
        value = given.get(spec.id)
        if value is None or (value == "" and spec.type is not InputType.STRING):
            if spec.defaults is not None:
                value = default_of(spec)
            elif spec.required:
                problems.append(
                    UserError("required input is missing", file=file, field=f"inputs.{spec.id}")
                )
                continue
            else:
                result[spec.id] = None
                continue
        try:
            result[spec.id] = _jsonable(coerce_value(spec, value))
        except InputError as error:
            problems.append(UserError(str(error), file=file, field=f"inputs.{spec.id}"))
    if problems:
        raise ValidationError(problems, file=file)
    return result


#: ``{{ now() }}`` as a DATETIME, DATE or TIME input's default (Kestra's dynamic default).
_NOW = re.compile(r"\{\{\s*now\(\s*\)\s*\}\}")


def nested_inputs(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Inputs for templates: a dotted id ``request.name`` is also ``inputs.request.name``
    (Kestra's nesting); the flat key stays reachable as ``inputs['request.name']``."""
    if not any("." in key for key in inputs):
        return inputs  # the usual case, rendered often: no copy
    nested: dict[str, Any] = dict(inputs)
    for key, value in inputs.items():
        if "." not in key:
            continue
        *parents, last = key.split(".")
        level = nested
        for part in parents:
            found = level.setdefault(part, {})
            if not isinstance(found, dict):
                break
            level = found
        else:
            level[last] = value
    return nested


def default_of(spec: Input) -> Any:
    """An input's default: ``{{ now() }}`` is the time the execution is created."""
    if isinstance(spec.defaults, str) and _NOW.fullmatch(spec.defaults.strip()):
        now = datetime.now(UTC)
        if spec.type is InputType.DATE:
            return now.date().isoformat()
        if spec.type is InputType.TIME:
            return now.time().isoformat()
        return now.isoformat()
    return spec.defaults


def coerce_value(spec: Input, value: Any) -> Any:
    """``value`` converted to ``spec``'s type and checked against its validators."""
    converted = _convert(spec, value)
    t = spec.type
    if t is InputType.STRING and spec.validator and not re.fullmatch(spec.validator, converted):
        raise InputError(f"{converted!r} does not match {spec.validator}")
    if t in _BOUNDED:
        if spec.min is not None and converted < _convert(spec, spec.min, bare=True):
            raise InputError(f"{_show(value)} is less than the minimum {spec.min}")
        if spec.max is not None and converted > _convert(spec, spec.max, bare=True):
            raise InputError(f"{_show(value)} is greater than the maximum {spec.max}")
    if t in _DATED:
        if spec.after is not None and not converted > _convert(spec, spec.after, bare=True):
            raise InputError(f"{_show(value)} is not after {spec.after}")
        if spec.before is not None and not converted < _convert(spec, spec.before, bare=True):
            raise InputError(f"{_show(value)} is not before {spec.before}")
    if t in _CHOICES and spec.values and not spec.allow_custom_value:
        chosen = converted if isinstance(converted, list) else [converted]
        for item in chosen:
            if item not in spec.values:
                raise InputError(f"{item!r} is not one of {', '.join(spec.values)}")
    return converted


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _convert(spec: Input, value: Any, *, bare: bool = False) -> Any:
    t = spec.type
    converter = _CONVERTERS.get(t)
    if converter is None:
        return value
    if t is InputType.ARRAY:
        items = _as_list(value)
        item_spec = Input(id=spec.id, type=spec.item_type or InputType.STRING)
        return [_convert(item_spec, item) for item in items]
    return converter(value)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise InputError(f"not a JSON array: {error.msg}") from None
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in text.split(",")] if text else []
    raise InputError(f"expected a list, got {_show(value)}")


def _string(value: Any) -> str:
    if isinstance(value, dict | list):
        raise InputError("expected a string, got a structure")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise InputError(f"expected an integer, got {value}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(f"expected an integer, got {_show(value)}") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise InputError(f"expected a number, got {value}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {_show(value)}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InputError(f"expected true or false, got {_show(value)}")


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"expected an ISO-8601 date-time, got {_show(value)}") from None
    if moment.tzinfo is None:
        raise InputError(f"{_show(value)} has no time zone (add Z or an offset such as +02:00)")
    return moment.astimezone(UTC)


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"expected an ISO-8601 date (YYYY-MM-DD), got {_show(value)}") from None


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"expected an ISO-8601 time (HH:MM:SS), got {_show(value)}") from None


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return _DURATION.validate_python(str(value).strip())
    except PydanticError:
        raise InputError(
            f"expected an ISO-8601 duration such as PT30S, got {_show(value)}"
        ) from None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg} at character {error.pos}") from None
    return value


def _yaml(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return safe_load(value)
        except YamlLimitError as error:
            raise InputError(f"YAML refused: {error}") from None
        except yaml.YAMLError as error:
            raise InputError(f"not valid YAML: {error}") from None
    return value


def _uri(value: Any) -> str:
    text = str(value).strip()
    if not _URI.match(text):
        raise InputError(f"expected a URI such as https://example.com, got {_show(value)}")
    return text


def _email(value: Any) -> str:
    text = str(value).strip()
    if not _EMAIL.match(text):
        raise InputError(f"expected an e-mail address, got {_show(value)}")
    return text


def _multi(value: Any) -> list[str]:
    return [str(v) for v in _as_list(value)]


_CONVERTERS: dict[InputType, Callable[[Any], Any]] = {
    InputType.STRING: _string,
    InputType.SECRET: _string,
    InputType.FILE: _string,
    InputType.ENUM: _string,
    InputType.SELECT: _string,
    InputType.MULTISELECT: _multi,
    InputType.INT: _int,
    InputType.FLOAT: _float,
    InputType.BOOLEAN: _bool,
    InputType.DATETIME: _datetime,
    InputType.DATE: _date,
    InputType.TIME: _time,
    InputType.DURATION: _duration,
    InputType.JSON: _json,
    InputType.YAML: _yaml,
    InputType.URI: _uri,
    InputType.EMAIL: _email,
    InputType.ARRAY: _as_list,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        from plait.templating import format_duration

        return format_duration(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
