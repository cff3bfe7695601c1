"""Functions, filters and tests beyond Jinja's own, as Kestra's Pebble provides them."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from jinja2 import Undefined

from plait.templating._undefined import is_undefined

# -- JSON ------------------------------------------------------------------------------------


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Compact JSON, as Kestra prints maps and lists."""
    if is_undefined(value):
        str(value)  # raises with the undefined path
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_default)


def from_json(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"fromJson: not valid JSON ({error.msg} at char {error.pos})") from None


def is_json(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except json.JSONDecodeError:
        return False
    return True


def is_empty(value: Any) -> bool:
    if value is None or is_undefined(value):
        return True
    if isinstance(value, str | list | tuple | dict | set):
        return len(value) == 0
    return False


def coalesce(value: Any, fallback: Any) -> Any:
    """``a ?? b``: ``b`` when ``a`` is undefined or null."""
    if value is None or isinstance(value, Undefined):
        return fallback
    return value


def undefined_coalesce(value: Any, fallback: Any) -> Any:
    """``a ??? b``: ``b`` when ``a`` is undefined (a null ``a`` is kept)."""
    return fallback if isinstance(value, Undefined) else value


# -- dates -----------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    if value.tzinfo is not None and value.utcoffset() == timedelta(0):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return text + "Z"
    return value.isoformat()


def format_duration(value: timedelta) -> str:
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    out = f"{sign}P"
    if days:
        out += f"{int(days)}D"
    out += "T"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if seconds or out.endswith("T"):
        out += f"{seconds:g}S"
    return out


def to_datetime(
    value: Any, time_zone: str | None = None, existing_format: str | None = None
) -> datetime:
    """``value`` as an aware datetime. A value without a zone is read in ``time_zone`` (UTC by
    default), as Kestra's date filters read it with their ``timeZone``; text is ISO-8601, or
    written in the Java pattern ``existing_format`` (Kestra's ``existingFormat``)."""
    if isinstance(value, Undefined):
        str(value)  # raises, naming the undefined path
    zone = _zone(time_zone) if time_zone else UTC
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # epoch millis vs seconds
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and existing_format:
        try:
            parsed = datetime.strptime(value.strip(), _strptime_pattern(existing_format))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date written as {existing_format!r} (existingFormat)"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date or datetime: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    raise ValueError(f"not a date or datetime: {value!r}")


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (timeZone): use an IANA name such as "
            "'Europe/Paris' or 'UTC'"
        ) from None


#: Java DateTimeFormatter letters as strptime reads them (Kestra's existingFormat).
_PARSE = {
    "y": "%Y", "u": "%Y", "yy": "%y", "uu": "%y", "MMMM": "%B", "MMM": "%b", "M": "%m",
    "d": "%d", "H": "%H", "h": "%I", "m": "%M", "s": "%S", "S": "%f", "a": "%p", "EEEE": "%A",
    "E": "%a", "D": "%j", "X": "%z", "x": "%z", "Z": "%z", "z": "%Z",
}  # fmt: skip


def _strptime_pattern(pattern: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _JAVA.finditer(pattern):
        out.append(pattern[pos : match.start()].replace("%", "%%"))
        pos = match.end()
        token = match.group(0)
        if token == "''":
            out.append("'")
        elif token.startswith("'"):
            out.append(token[1:-1].replace("''", "'").replace("%", "%%"))
        else:
            found = _PARSE.get(token) or _PARSE.get(token[0])
            if found is None:
                raise ValueError(f"existingFormat: the pattern letter {token[0]!r} is unsupported")
            out.append(found)
    out.append(pattern[pos:].replace("%", "%%"))
    return "".join(out)


_JAVA = re.compile(r"''|'(?:[^']|'')*'|([a-zA-Z])\1*")
_JAVA_MAP = {
    "yyyy": "%Y", "uuuu": "%Y", "yy": "%y", "MMMM": "%B", "MMM": "%b", "MM": "%m",
    "dd": "%d", "HH": "%H", "hh": "%I", "mm": "%M", "ss": "%S", "EEEE": "%A", "EEE": "%a",
    "E": "%a", "a": "%p", "DDD": "%j", "Z": "%z", "z": "%Z",
}  # fmt: skip


def format_date(
    value: Any,
    pattern: str = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    timezone: str | None = None,
    **named: Any,
) -> str:
    """Format with a Java ``DateTimeFormatter`` pattern (Kestra's) or a ``strftime`` one.

    Kestra's named arguments: ``format`` (the pattern), ``timeZone`` (the zone the date is
    shown in, and the one a date without a zone is read in), ``existingFormat`` (the Java
    pattern text is written in) and ``locale`` (accepted; names are English)."""
    pattern, time_zone, existing = _date_arguments("date", pattern, timezone, named)
    moment = to_datetime(value, time_zone, existing)
    if time_zone:
        moment = moment.astimezone(_zone(time_zone))
    if "%" in pattern:
        return moment.strftime(pattern)
    if pattern in ("iso", "ISO"):
        return format_datetime(moment)
    out: list[str] = []
    pos = 0
    for match in _JAVA.finditer(pattern):
        out.append(pattern[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "''":
            out.append("'")
        elif token.startswith("'"):
            out.append(token[1:-1].replace("''", "'"))
        else:
            out.append(_java_token(token, moment))
    out.append(pattern[pos:])
    return "".join(out)


def _java_token(token: str, moment: datetime) -> str:
    letter, width = token[0], len(token)
    if token in _JAVA_MAP:
        return moment.strftime(_JAVA_MAP[token])
    if letter == "M" and width == 1:
        return str(moment.month)
    if letter == "d" and width == 1:
        return str(moment.day)
    if letter == "H" and width == 1:
        return str(moment.hour)
    if letter in "yu" and width != 2:
        return str(moment.year).zfill(width)
    if letter == "S":
        return f"{moment.microsecond:06d}"[:width].ljust(width, "0")
    if letter in "Xx":
        offset = moment.utcoffset() or timedelta(0)
        if letter == "X" and offset == timedelta(0):
            return "Z"
        total = int(offset.total_seconds() // 60)
        sign = "+" if total >= 0 else "-"
        hh, mm = divmod(abs(total), 60)
        return f"{sign}{hh:02d}" + ("" if width == 1 else (":" if width >= 3 else "") + f"{mm:02d}")
    return token


_UNITS = {
    "SECONDS": "seconds", "MINUTES": "minutes", "HOURS": "hours", "DAYS": "days",
    "WEEKS": "weeks", "MILLIS": "milliseconds",
}  # fmt: skip


def date_add(value: Any, amount: int, unit: str = "DAYS") -> datetime:
    key = unit.upper().rstrip("S") + "S" if unit.upper() != "MILLIS" else "MILLIS"
    if key == "MONTHS" or key == "YEARS":
        moment = to_datetime(value)
        months = amount * (12 if key == "YEARS" else 1) + moment.month - 1
        year, month = moment.year + months // 12, months % 12 + 1
        return moment.replace(year=year, month=month)
    if key not in _UNITS:
        raise ValueError(f"dateAdd: unknown unit {unit!r}")
    return to_datetime(value) + timedelta(**{_UNITS[key]: amount})


def _date_arguments(
    name: str, pattern: str | None, timezone: str | None, named: dict[str, Any]
) -> tuple[str, str | None, str | None]:
    """Kestra's named arguments of its date filters: (format, timeZone, existingFormat)."""
    unknown = set(named) - {"format", "timeZone", "existingFormat", "locale"}
    if unknown:
        raise TypeError(
            f"{name}() has no argument {', '.join(sorted(unknown))}; "
            "it takes format, timeZone, existingFormat and locale"
        )
    fmt = named.get("format", pattern)
    return str(fmt), named.get("timeZone", timezone), named.get("existingFormat")


def date_instant(value: Any, named: dict[str, Any], name: str) -> datetime:
    """The instant a timestamp filter reads: ``timeZone`` places a date without a zone,
    ``existingFormat`` reads text (Kestra's arguments of timestamp, timestampMilli...)."""
    _, time_zone, existing = _date_arguments(name, "", None, named)
    return to_datetime(value, time_zone, existing)


def timestamp(value: Any, **named: Any) -> int:
    """Unix time in seconds (Kestra's ``timestamp``; ``timeZone`` places a date without a
    zone, ``existingFormat`` reads text)."""
    return int(date_instant(value, named, "timestamp").timestamp())


# -- strings and collections ----------------------------------------------------------------


def slugify(value: Any) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def abbreviate(value: Any, length: int) -> str:
    text = str(value)
    if len(text) <= length:
        return text
    return text[: max(length - 3, 0)] + "..."


def keys(value: Mapping[str, Any]) -> list[Any]:
    if isinstance(value, Undefined):
        str(value)  # raises, naming the undefined path
    return list(value.keys())


def values(value: Mapping[str, Any]) -> list[Any]:
    if isinstance(value, Undefined):
        str(value)  # raises, naming the undefined path
    return list(value.values())


def starts_with(value: Any, prefix: str) -> bool:
    return str(value).startswith(prefix)


def ends_with(value: Any, suffix: str) -> bool:
    return str(value).endswith(suffix)


def now() -> datetime:
    return datetime.now(UTC)
