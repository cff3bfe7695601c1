"""Values in and out: database values to JSON-friendly ones, flow values to bindable ones.

Out (rows in outputs and STORE files):

============================  ===========================================================
database value                output
============================  ===========================================================
NULL, text, integer, boolean  as is
float                         number; NaN and infinities as the strings ``"NaN"``,
                              ``"Infinity"``, ``"-Infinity"``
DECIMAL / NUMERIC             with fractional digits (scale > 0): a **string** keeping every
                              digit (``"12.50"``); without (``SUM`` of integers,
                              ``NUMERIC(20,0)``): an **integer**
date, time, timestamp         ISO-8601 text (``2024-05-01``, ``13:45:00``,
                              ``2024-05-01T13:45:00+00:00``; naive stays naive)
interval / MySQL TIME         ISO-8601 duration (``P1DT2H``)
binary (BYTEA, BLOB, BIT)     base64 text
UUID, network addresses       text
JSON / JSONB                  the parsed value (objects, arrays...) as is
arrays                        lists, items converted the same way
ranges                        ``{"lower", "upper", "lowerInc", "upperInc", "empty"}``
anything else                 its text form
============================  ===========================================================
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from plait_db._sql import Dialect

Converter = Callable[[Any], Any]
#: Types whose values are already JSON-friendly as they are.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def iso_duration(value: dt.timedelta) -> str:
    """A timedelta as an ISO-8601 duration.

    Example::

        >>> iso_duration(dt.timedelta(days=1, hours=2, seconds=3.5))
        'P1DT2H3.5S'
        >>> iso_duration(dt.timedelta(0))
        'PT0S'
    """
    micros = value // dt.timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    days, micros = divmod(micros, 86_400_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if micros:
        time += f"{seconds}.{micros:06d}".rstrip("0") + "S"
    elif seconds:
        time += f"{seconds}S"
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return sign + ("PT0S" if text == "P" else text)


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _decimal(value: Decimal) -> Any:
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return str(value)


def _binary(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


class ValueConverter:
    """Turns database values into JSON-friendly ones (see the module docs for the mapping)."""

    def __init__(self, time_zone: str | None = None) -> None:
        self.zone = ZoneInfo(time_zone) if time_zone else None
        self._by_type: dict[type, Converter] = {
            float: _float,
            Decimal: _decimal,
            dt.datetime: self._datetime,
            dt.date: dt.date.isoformat,
            dt.time: dt.time.isoformat,
            dt.timedelta: iso_duration,
            bytes: _binary,
            bytearray: _binary,
            memoryview: _binary,
            uuid.UUID: str,
            dict: self._dict,
            list: self._list,
            tuple: self._list,
        }

    def _datetime(self, value: dt.datetime) -> str:
        if self.zone is not None and value.tzinfo is not None:
            value = value.astimezone(self.zone)
        return value.isoformat()

    def _dict(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        return {str(k): self.convert(v) for k, v in value.items()}

    def _list(self, value: Iterable[Any]) -> list[Any]:
        return [self.convert(v) for v in value]

    def convert(self, value: Any) -> Any:
        """One value, JSON-friendly."""
        kind = type(value)
        if value is None or kind is str or kind is int or kind is bool:
            return value
        exact = self._by_type.get(kind)
        if exact is not None:
            return exact(value)
        return self._other(value)

    def _other(self, value: Any) -> Any:
        for kind, converter in self._by_type.items():
            if isinstance(value, kind):
                return converter(value)
        if isinstance(value, enum.Enum):
            return self.convert(value.value)
        if isinstance(value, str | int):  # str and int subclasses (bool handled above)
            return str(value) if isinstance(value, str) else int(value)
        if isinstance(value, set | frozenset):
            return sorted((self.convert(v) for v in value), key=str)
        if all(hasattr(value, a) for a in ("lower", "upper", "lower_inc", "upper_inc")):
            return {  # a range (asyncpg.Range)
                "lower": self.convert(value.lower),
                "upper": self.convert(value.upper),
                "lowerInc": bool(value.lower_inc),
                "upperInc": bool(value.upper_inc),
                "empty": bool(getattr(value, "isempty", False)),
            }
        return str(value)

    def row_converter(
        self, columns: Sequence[str], json_columns: Iterable[int] = ()
    ) -> Callable[[Sequence[Any]], dict[str, Any]]:
        """A function turning a result row into a ``{column: value}`` dict.

        ``json_columns`` are indexes of columns the driver hands over as JSON text (MySQL's
        JSON type), parsed here.
        """
        names = list(columns)
        parse = frozenset(json_columns)
        convert = self.convert
        plain = _PLAIN_TYPES
        if not parse:
            # Text, integers and NULL (most values) are kept without a call: STORE converts
            # millions of them.
            return lambda row: {
                k: v if type(v) in plain else convert(v) for k, v in zip(names, row, strict=False)
            }

        def with_json(row: Sequence[Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for index, (name, value) in enumerate(zip(names, row, strict=False)):
                if index in parse and isinstance(value, str | bytes):
                    try:
                        out[name] = json.loads(value)
                        continue
                    except ValueError:
                        pass
                out[name] = convert(value)
            return out

        return with_json


#: MySQL's JSON column type code in a cursor description (MariaDB reports JSON as LONGTEXT).
MYSQL_JSON_TYPE = 245


def mysql_json_columns(description: Sequence[Sequence[Any]] | None) -> list[int]:
    """Indexes of the JSON columns in a MySQL cursor description."""
    if not description:
        return []
    return [i for i, column in enumerate(description) if column[1] == MYSQL_JSON_TYPE]


# -- parameters ---------------------------------------------------------------------------------


def bindable(value: Any, dialect: Dialect) -> Any:
    """A flow value as the driver binds it: maps become JSON text; lists stay lists for
    PostgreSQL arrays and ``IN`` lists, and become JSON text elsewhere."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list | tuple) and dialect != "postgresql":
        return json.dumps(list(value))
    return value


def bindable_for_in(value: Any, dialect: Dialect) -> Any:
    """A value bound to ``IN :name``: a list stays a list (it expands)."""
    if isinstance(value, list | tuple):
        return [bindable(v, dialect) for v in value]
    return bindable(value, dialect)


_DATETIME = TypeAdapter(dt.datetime)
_DATE = TypeAdapter(dt.date)
_TIME = TypeAdapter(dt.time)
_DURATION = TypeAdapter(dt.timedelta)
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "char", "name", "citext", "xml"})


def _to_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return value
    if isinstance(value, int | float):
        return bool(value)
    return value


def _to_int(value: Any) -> Any:
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, str | Decimal):
        return float(value)
    return value


def _to_numeric(value: Any) -> Any:
    if isinstance(value, str):
        return Decimal(value.strip())
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _to_datetime(value: Any, *, aware: bool) -> Any:
    if isinstance(value, str):
        value = _DATETIME.validate_python(value.strip())
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime) and not aware and value.tzinfo is not None:
        # As PostgreSQL does for text: an offset given for a TIMESTAMP (no zone) is ignored.
        value = value.replace(tzinfo=None)
    return value


def _to_date(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        try:
            return _DATE.validate_python(text)
        except ValueError:
            return _DATETIME.validate_python(text).date()
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _to_time(value: Any) -> Any:
    return _TIME.validate_python(value.strip()) if isinstance(value, str) else value


def _to_interval(value: Any) -> Any:
    if isinstance(value, str | int | float):
        return _DURATION.validate_python(value)
    return value


def _to_uuid(value: Any) -> Any:
    return uuid.UUID(value.strip()) if isinstance(value, str) else value


def _to_json(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value)


def _to_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _to_bytes(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


_PG_COERCE: dict[str, Converter] = {
    "int2": _to_int,
    "int4": _to_int,
    "int8": _to_int,
    "oid": _to_int,
    "float4": _to_float,
    "float8": _to_float,
    "numeric": _to_numeric,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": lambda v: _to_datetime(v, aware=False),
    "timestamptz": lambda v: _to_datetime(v, aware=True),
    "time": _to_time,
    "timetz": _to_time,
    "interval": _to_interval,
    "uuid": _to_uuid,
    "json": _to_json,
    "jsonb": _to_json,
    "bytea": _to_bytes,
    **{name: _to_text for name in _TEXT_TYPES},
}


def coerce_postgres(value: Any, type_name: str, kind: str) -> Any:
    """``value`` converted to what asyncpg accepts for a parameter of PostgreSQL type
    ``type_name``: asyncpg refuses text for a DATE parameter, a number for a TEXT one...

    Values that cannot be converted are returned unchanged (the driver then reports them).

    Example::

        >>> coerce_postgres("2024-05-01", "date", "scalar")
        datetime.date(2024, 5, 1)
        >>> coerce_postgres("[1, 2]", "int4[]", "array")
        [1, 2]
    """
    try:
        if kind == "array":
            element = type_name[:-2] if type_name.endswith("[]") else type_name.lstrip("_")
            if isinstance(value, str) and value.lstrip().startswith("["):
                value = json.loads(value)
            if isinstance(value, list | tuple):
                return [coerce_postgres(v, element, "scalar") for v in value]
            return value
        if value is None:
            return None
        converter = _PG_COERCE.get(type_name)
        return converter(value) if converter is not None else value
    except (ValueError, TypeError, ArithmeticError, InvalidOperation):
        return value


#: The Python types asyncpg takes as they are for a PostgreSQL type (bool is not an int here).
_PG_NATIVE: dict[str, tuple[type, ...]] = {
    "int2": (int,),
    "int4": (int,),
    "int8": (int,),
    "float4": (float,),
    "float8": (float,),
    "numeric": (Decimal, int),
    "bool": (bool,),
    "date": (dt.date,),
    "uuid": (uuid.UUID,),
    "json": (str,),
    "jsonb": (str,),
    "bytea": (bytes,),
    **{name: (str,) for name in _TEXT_TYPES},
}


def postgres_converter(type_name: str, kind: str) -> Converter:
    """A function doing :func:`coerce_postgres` for one parameter, with a fast path for values
    that need nothing (``None``, an ``int`` for an INTEGER, a ``str`` for a TEXT...): bulk
    loads convert millions of values.

    Example::

        >>> convert = postgres_converter("int4", "scalar")
        >>> convert(7), convert("8"), convert(None)
        (7, 8, None)
    """
    # Exact types: a datetime (a date subclass) still goes through coerce_postgres for a DATE.
    native = frozenset(_PG_NATIVE.get(type_name, ())) if kind == "scalar" else frozenset()

    def convert(value: Any) -> Any:
        if value is None or type(value) in native:
            return value
        return coerce_postgres(value, type_name, kind)

    return convert
