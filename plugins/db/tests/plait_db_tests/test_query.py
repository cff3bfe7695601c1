"""plait.db.Query against real PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plait_db import Query, QueryOutput
from plait_sdk import UserError
from plait_sdk.testing import HarnessContext

from .conftest import Db, make_context


async def query(ctx: HarnessContext, **properties: Any) -> QueryOutput:
    return await Query.model_validate(properties).run(ctx)


async def people(db: Db) -> str:
    table = db.table("people")
    await db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(50), score INTEGER)",
        f"INSERT INTO {table} (id, name, score) VALUES (1, 'Ada', 90), (2, 'Bob', 75), "
        "(3, 'Cy', NULL)",
    )
    return table


async def test_fetch_type_none_runs_and_outputs_no_rows(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(ctx, url=db.url, sql=f"SELECT * FROM {table}")
    assert out.dump() == {}
    assert ctx.metrics == [("fetch.size", 0, "counter", {"fetch": "false", "store": "false"})]


async def test_fetch_one(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(
        ctx, url=db.url, sql=f"SELECT id, name FROM {table} ORDER BY id", fetchType="FETCH_ONE"
    )
    assert out.dump() == {"row": {"id": 1, "name": "Ada"}, "size": 1}
    empty = await query(
        ctx, url=db.url, sql=f"SELECT id FROM {table} WHERE id > 99", fetchType="FETCH_ONE"
    )
    assert empty.dump() == {"row": None, "size": 0}  # `row` is present (null), as in Kestra


async def test_fetch(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(ctx, url=db.url, sql=f"SELECT * FROM {table} ORDER BY id", fetchType="FETCH")
    assert out.dump() == {
        "rows": [
            {"id": 1, "name": "Ada", "score": 90},
            {"id": 2, "name": "Bob", "score": 75},
            {"id": 3, "name": "Cy", "score": None},
        ],
        "size": 3,
    }
    assert ("INFO", "query: fetched 3 row(s)") in ctx.logs
    assert ctx.metrics == [("fetch.size", 3, "counter", {"fetch": "true", "store": "false"})]


async def test_store_writes_json_lines_to_internal_storage(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(ctx, url=db.url, sql=f"SELECT * FROM {table} ORDER BY id", fetchType="STORE")
    assert out.size == 3
    assert out.uri is not None
    assert out.uri.startswith("plait:///tests/db/executions/")
    assert out.uri.endswith("/query.jsonl")
    lines = (await ctx.storage.read_bytes(out.uri)).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "name": "Ada", "score": 90},
        {"id": 2, "name": "Bob", "score": 75},
        {"id": 3, "name": "Cy", "score": None},
    ]
    assert ctx.metrics == [("fetch.size", 3, "counter", {"fetch": "false", "store": "true"})]


async def test_store_of_an_empty_result_is_an_empty_file(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(ctx, url=db.url, sql=f"SELECT * FROM {table} WHERE id < 0", fetchType="STORE")
    assert out.size == 0
    assert out.uri is not None
    assert await ctx.storage.read_bytes(out.uri) == b""


async def test_insert_returning_rows_is_fetched(pg: Db, ctx: HarnessContext) -> None:
    table = await people(pg)
    out = await query(
        ctx,
        url=pg.url,
        sql=f"INSERT INTO {table} (id, name) VALUES (7, 'Eve'), (8, 'Fay') RETURNING id",
        fetchType="STORE",
    )
    assert out.size == 2
    assert out.uri is not None
    assert await ctx.storage.read_bytes(out.uri) == b'{"id":7}\n{"id":8}\n'


async def test_affected_rows(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    inserted = await query(
        ctx, url=db.url, sql=f"INSERT INTO {table} (id, name) VALUES (4, 'Di'), (5, 'Ed')"
    )
    assert inserted.dump() == {"affectedRows": 2}
    updated = await query(
        ctx, url=db.url, sql=f"UPDATE {table} SET score = 1 WHERE id >= 2", fetchType="FETCH"
    )
    assert updated.dump() == {"affectedRows": 4}
    deleted = await query(ctx, url=db.url, sql=f"DELETE FROM {table} WHERE id = 1")
    assert deleted.affected_rows == 1
    assert ("INFO", "query: 1 row(s) affected") in ctx.logs
    assert await db.rows(f"SELECT count(*) FROM {table}") == [(4,)]


async def test_query_autocommits(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    await query(ctx, url=db.url, sql=f"UPDATE {table} SET name = 'Ann' WHERE id = 1")
    assert await db.rows(f"SELECT name FROM {table} WHERE id = 1") == [("Ann",)]


async def test_jdbc_url(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(
        ctx, url=db.jdbc, sql=f"SELECT count(*) AS n FROM {table}", fetchType="FETCH_ONE"
    )
    assert out.row == {"n": 3}


async def test_after_sql_runs_in_the_same_transaction(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    out = await query(
        ctx,
        url=db.url,
        sql=f"SELECT id FROM {table} WHERE score IS NOT NULL ORDER BY id",
        afterSQL=f"UPDATE {table} SET score = NULL WHERE score IS NOT NULL",
        fetchType="FETCH",
    )
    assert out.rows == [{"id": 1}, {"id": 2}]
    assert await db.rows(f"SELECT count(*) FROM {table} WHERE score IS NOT NULL") == [(0,)]


async def test_a_failing_after_sql_rolls_back_both(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    with pytest.raises(Exception, match="afterSQL failed"):
        await query(
            ctx,
            url=db.url,
            sql=f"UPDATE {table} SET score = 0",
            afterSQL=f"INSERT INTO {table} (id, name) VALUES (1, 'duplicate key')",
        )
    assert await db.rows(f"SELECT score FROM {table} ORDER BY id") == [(90,), (75,), (None,)]


async def test_deprecated_kestra_booleans(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    sql = f"SELECT id FROM {table} ORDER BY id"
    assert (await query(ctx, url=db.url, sql=sql, fetch=True)).size == 3
    assert (await query(ctx, url=db.url, sql=sql, fetchOne=True)).row == {"id": 1}
    assert (await query(ctx, url=db.url, sql=sql, store=True)).uri is not None


async def test_one_statement_only(ctx: HarnessContext) -> None:
    with pytest.raises(UserError, match=r"sql: has 2 statements; plait.db.Query runs one"):
        await query(ctx, url="jdbc:sqlite::memory:", sql="SELECT 1; SELECT 2")
    out = await query(ctx, url="jdbc:sqlite::memory:", sql="SELECT 1 AS one;", fetchType="FETCH")
    assert out.rows == [{"one": 1}]
    with pytest.raises(UserError, match="sql: no SQL statement to run"):
        await query(ctx, url="jdbc:sqlite::memory:", sql=" -- nothing\n")


async def test_fetch_type_is_validated() -> None:
    assert (
        Query.model_validate({"url": "x", "sql": "y", "fetchType": "fetch_one"}).fetch_type
        == "FETCH_ONE"
    )
    with pytest.raises(ValueError, match="fetchType"):
        Query.model_validate({"url": "x", "sql": "y", "fetchType": "ALL"})
    with pytest.raises(ValueError, match="unknown time zone"):
        Query.model_validate({"url": "x", "sql": "y", "timeZoneId": "Mars/Olympus"})


async def test_memory_sqlite_is_private_to_one_task_run(ctx: HarnessContext) -> None:
    out = await query(
        ctx, url="jdbc:sqlite::memory:", sql="SELECT sqlite_version() AS v", fetchType="FETCH_ONE"
    )
    assert out.row is not None
    assert out.row["v"].startswith("3.")


async def test_sqlite_file_round_trip_through_internal_storage(
    ctx: HarnessContext, tmp_path: Any
) -> None:
    from plait_db import Queries

    built = await Queries.model_validate(
        {
            "url": "jdbc:sqlite:report.db",
            "outputDbFile": True,
            "sql": ["CREATE TABLE totals (n INTEGER)", "INSERT INTO totals VALUES (1), (2)"],
        }
    ).run(ctx)
    assert built.database_uri is not None
    assert built.database_uri.endswith("/report.db")
    later = make_context(tmp_path, "later")
    later._storage = ctx._storage  # the same execution's storage
    out = await query(
        later,
        url="jdbc:sqlite:report.db",
        sqliteFile=built.database_uri,
        sql="SELECT sum(n) AS total FROM totals",
        fetchType="FETCH_ONE",
    )
    assert out.row == {"total": 3}
    assert (later.working_dir / "report.db").exists()
    with pytest.raises(UserError, match="sqliteFile: only applies to SQLite URLs"):
        await query(
            ctx, url="jdbc:postgresql://db/x", sqliteFile=built.database_uri, sql="SELECT 1"
        )


async def test_time_zone_id(pg: Db, ctx: HarnessContext) -> None:
    out = await query(
        ctx,
        url=pg.url,
        sql=(
            "SELECT TIMESTAMPTZ '2024-01-01 12:00:00+00' AS at, "
            "TIMESTAMP '2024-01-01 12:00' AS naive"
        ),
        fetchType="FETCH_ONE",
        timeZoneId="America/New_York",
    )
    assert out.row == {"at": "2024-01-01T07:00:00-05:00", "naive": "2024-01-01T12:00:00"}
