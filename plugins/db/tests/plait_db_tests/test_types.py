"""Column types become JSON-friendly values, the same in outputs and in STORE files."""

from __future__ import annotations

import json
from typing import Any

from plait_db import Query
from plait_sdk.testing import HarnessContext

from .conftest import Db


async def fetch_one(ctx: HarnessContext, db: Db, sql: str) -> dict[str, Any]:
    out = await Query.model_validate({"url": db.url, "sql": sql, "fetchType": "FETCH_ONE"}).run(ctx)
    assert out.row is not None
    stored = await Query.model_validate({"url": db.url, "sql": sql, "fetchType": "STORE"}).run(ctx)
    assert stored.uri is not None
    line = (await ctx.storage.read_bytes(stored.uri)).decode()
    assert json.loads(line) == out.row, "STORE and FETCH_ONE must map values alike"
    # Everything is plain JSON.
    assert json.loads(json.dumps(out.row)) == out.row
    return out.row


async def test_postgres_types(pg: Db, ctx: HarnessContext) -> None:
    table = pg.table("types")
    await pg.execute(
        f"CREATE TABLE {table} ("
        "small SMALLINT, big BIGINT, price NUMERIC(10, 2), whole NUMERIC(30, 0), "
        "ratio DOUBLE PRECISION, nan DOUBLE PRECISION, flag BOOLEAN, label VARCHAR(20), "
        "day DATE, at TIMESTAMP, at_tz TIMESTAMPTZ, clock TIME, span INTERVAL, "
        "raw BYTEA, id UUID, doc JSON, docb JSONB, tags TEXT[], matrix INT[], "
        "addr INET, period INT4RANGE, nothing TEXT)"
    )
    await pg.execute(
        f"INSERT INTO {table} VALUES ("
        "-3, 9007199254740993, 1234.50, 123456789012345678901234567890, 0.25, 'NaN', true, "
        "'naïve ☃', '2024-02-29', '2024-02-29 13:45:06.5', '2024-02-29 13:45:06+02', "
        "'23:59:58', '1 day 02:03:04.5', '\\x00ff10', '12345678-1234-5678-1234-567812345678', "
        "'{\"a\": [1, 2.5, null]}', '{\"b\": {\"c\": true}}', ARRAY['x', 'y'], "
        "ARRAY[[1, 2], [3, 4]], '10.0.0.1', '[1,5)', NULL)"
    )
    row = await fetch_one(ctx, pg, f"SELECT * FROM {table}")
    assert row == {
        "small": -3,
        "big": 9007199254740993,
        "price": "1234.50",
        "whole": 123456789012345678901234567890,
        "ratio": 0.25,
        "nan": "NaN",
        "flag": True,
        "label": "naïve ☃",
        "day": "2024-02-29",
        "at": "2024-02-29T13:45:06.500000",
        "at_tz": "2024-02-29T11:45:06+00:00",
        "clock": "23:59:58",
        "span": "P1DT2H3M4.5S",
        "raw": "AP8Q",
        "id": "12345678-1234-5678-1234-567812345678",
        "doc": {"a": [1, 2.5, None]},
        "docb": {"b": {"c": True}},
        "tags": ["x", "y"],
        "matrix": [[1, 2], [3, 4]],
        "addr": "10.0.0.1",
        "period": {"lower": 1, "upper": 5, "lowerInc": True, "upperInc": False, "empty": False},
        "nothing": None,
    }


async def test_postgres_aggregates(pg: Db, ctx: HarnessContext) -> None:
    row = await fetch_one(
        ctx,
        pg,
        "SELECT count(*) AS n, sum(x) AS total, avg(x) AS mean FROM (VALUES (1), (2), (4)) AS v(x)",
    )
    # SUM of integers is an integral NUMERIC: an integer; AVG has a scale: exact text.
    assert row == {"n": 3, "total": 7, "mean": "2.3333333333333333"}


async def test_mariadb_types(mysql: Db, ctx: HarnessContext) -> None:
    table = mysql.table("types")
    await mysql.execute(
        f"CREATE TABLE {table} ("
        "small SMALLINT, big BIGINT UNSIGNED, price DECIMAL(10, 2), whole DECIMAL(30, 0), "
        "ratio DOUBLE, flag BOOLEAN, label VARCHAR(20), day DATE, at DATETIME(3), "
        "stamp TIMESTAMP NULL, clock TIME, yr YEAR, raw VARBINARY(8), blob_col BLOB, "
        "bits BIT(8), choice ENUM('a', 'b'), doc JSON, nothing TEXT) CHARACTER SET utf8mb4"
    )
    await mysql.execute(
        f"INSERT INTO {table} VALUES ("
        "-3, 18446744073709551615, 1234.50, 123456789012345678901234567890, 0.25, TRUE, "
        "'naïve ☃', '2024-02-29', '2024-02-29 13:45:06.5', '2024-02-29 13:45:06', "
        "'26:03:04', 2024, x'00ff10', 'hi', b'00000101', 'b', "
        "'{\"a\": [1, 2.5, null]}', NULL)"
    )
    row = await fetch_one(ctx, mysql, f"SELECT * FROM {table}")
    assert row == {
        "small": -3,
        "big": 18446744073709551615,
        "price": "1234.50",
        "whole": 123456789012345678901234567890,
        "ratio": 0.25,
        "flag": 1,  # BOOLEAN is TINYINT(1) in MySQL / MariaDB
        "label": "naïve ☃",
        "day": "2024-02-29",
        "at": "2024-02-29T13:45:06.500000",
        "stamp": "2024-02-29T13:45:06",
        "clock": "P1DT2H3M4S",  # TIME is a duration (up to 838 hours)
        "yr": 2024,
        "raw": "AP8Q",
        "blob_col": "aGk=",
        "bits": "BQ==",
        "choice": "b",
        # MariaDB reports JSON columns as LONGTEXT: the document arrives as text
        # (MySQL's native JSON type is parsed); use fromJson in templates.
        "doc": '{"a": [1, 2.5, null]}',
        "nothing": None,
    }


async def test_mariadb_aggregates(mysql: Db, ctx: HarnessContext) -> None:
    row = await fetch_one(
        ctx,
        mysql,
        "SELECT count(*) AS n, sum(x) AS total, avg(x) AS mean FROM "
        "(SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 4) AS v",
    )
    assert row == {"n": 3, "total": 7, "mean": "2.3333"}


async def test_sqlite_types(sqlite: Db, ctx: HarnessContext) -> None:
    table = sqlite.table("types")
    await sqlite.execute(
        f"CREATE TABLE {table} (i INTEGER, r REAL, n NUMERIC, t TEXT, b BLOB, d DATE, z)"
    )
    await sqlite.execute(
        f"INSERT INTO {table} VALUES (9007199254740993, 0.5, 12.5, 'naïve ☃', x'00ff10', "
        "'2024-02-29', NULL)"
    )
    row = await fetch_one(ctx, sqlite, f"SELECT * FROM {table}")
    assert row == {
        "i": 9007199254740993,
        "r": 0.5,
        "n": 12.5,  # SQLite stores NUMERIC as a REAL or an INTEGER
        "t": "naïve ☃",
        "b": "AP8Q",
        "d": "2024-02-29",  # SQLite has no date type: text stays text
        "z": None,
    }
    assert await fetch_one(ctx, sqlite, "SELECT json_object('a', 1) AS doc") == {"doc": '{"a":1}'}
