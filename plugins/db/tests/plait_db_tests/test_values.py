"""Value mapping without a database: outputs and PostgreSQL parameter coercion."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from plait_db._errors import scrub
from plait_db._values import ValueConverter, coerce_postgres, iso_duration, mysql_json_columns


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), "12.50"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("42"), 42),
        (Decimal("1E+3"), 1000),
        (Decimal("123456789012345678901234567890"), 123456789012345678901234567890),
        (Decimal("NaN"), "NaN"),
        (1.5, 1.5),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (dt.datetime(2024, 5, 1, 13, 45, 0, 123000), "2024-05-01T13:45:00.123000"),
        (dt.datetime(2024, 5, 1, 13, 45, tzinfo=dt.UTC), "2024-05-01T13:45:00+00:00"),
        (dt.date(2024, 5, 1), "2024-05-01"),
        (dt.time(13, 45), "13:45:00"),
        (dt.timedelta(days=1, hours=2), "P1DT2H"),
        (b"\x00\xffhi", "AP9oaQ=="),
        (memoryview(b"ab"), "YWI="),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ({"a": [1, Decimal("2.5")]}, {"a": [1, "2.5"]}),
        ((1, 2), [1, 2]),
        ({"b", "a"}, ["a", "b"]),
        (True, True),
        (None, None),
    ],
)
def test_converted_values(value: object, expected: object) -> None:
    assert ValueConverter().convert(value) == expected


def test_time_zone_applies_to_aware_values_only() -> None:
    convert = ValueConverter("Europe/Paris").convert
    assert convert(dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)) == "2024-01-01T13:00:00+01:00"
    assert convert(dt.datetime(2024, 1, 1, 12)) == "2024-01-01T12:00:00"


def test_iso_durations() -> None:
    assert iso_duration(dt.timedelta(0)) == "PT0S"
    assert iso_duration(dt.timedelta(minutes=90, microseconds=500)) == "PT1H30M0.0005S"
    assert iso_duration(-dt.timedelta(days=2)) == "-P2D"


def test_mysql_json_columns_are_parsed() -> None:
    description = [("id", 3, None, 11, 11, 0, True), ("doc", 245, None, 1, 1, 0, True)]
    assert mysql_json_columns(description) == [1]
    row = ValueConverter().row_converter(["id", "doc"], [1])
    assert row((1, '{"a": [1, 2]}')) == {"id": 1, "doc": {"a": [1, 2]}}
    assert row((2, "not json")) == {"id": 2, "doc": "not json"}


@pytest.mark.parametrize(
    ("value", "type_name", "kind", "expected"),
    [
        ("42", "int4", "scalar", 42),
        (3.0, "int8", "scalar", 3),
        ("2.50", "numeric", "scalar", Decimal("2.50")),
        (0.1, "numeric", "scalar", Decimal("0.1")),
        ("1.5", "float8", "scalar", 1.5),
        ("yes", "bool", "scalar", True),
        ("2024-05-01", "date", "scalar", dt.date(2024, 5, 1)),
        ("2024-05-01T10:00:00Z", "date", "scalar", dt.date(2024, 5, 1)),
        ("2024-05-01T10:00:00+02:00", "timestamp", "scalar", dt.datetime(2024, 5, 1, 10)),
        (
            "2024-05-01T10:00:00+02:00",
            "timestamptz",
            "scalar",
            dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
        ("PT1H", "interval", "scalar", dt.timedelta(hours=1)),
        ("12:30", "time", "scalar", dt.time(12, 30)),
        (
            "12345678-1234-5678-1234-567812345678",
            "uuid",
            "scalar",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        ({"a": 1}, "jsonb", "scalar", '{"a": 1}'),
        (7, "text", "scalar", "7"),
        (True, "varchar", "scalar", "true"),
        ("[1, 2]", "int4[]", "array", [1, 2]),
        (["1", "2"], "int4[]", "array", [1, 2]),
        ("not a number", "int4", "scalar", "not a number"),
        (None, "int4", "scalar", None),
    ],
)
def test_postgres_coercion(value: object, type_name: str, kind: str, expected: object) -> None:
    assert coerce_postgres(value, type_name, kind) == expected


def test_scrub_removes_every_form_of_the_password() -> None:
    message = "auth failed for p@ss w/rd, p%40ss%20w%2Frd and p%40ss+w%2Frd"
    assert scrub(message, ["p@ss w/rd"]) == "auth failed for ******, ****** and ******"
    assert scrub("nothing", [None, ""]) == "nothing"
