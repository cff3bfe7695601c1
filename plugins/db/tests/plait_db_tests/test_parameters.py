"""Bound parameters: values travel apart from the SQL, on every database."""

from __future__ import annotations

from typing import Any

import pytest
from plait_db import Queries, Query, QueryOutput
from plait_sdk import UserError
from plait_sdk.testing import HarnessContext

from .conftest import Db

INJECTIONS = [
    "x'); DROP TABLE {table}; --",
    "' OR '1'='1",
    "\\'; DROP TABLE {table}; -- ",
    'Robert"); DELETE FROM {table}; --',
    ":name $1 %s ? %(x)s",
]


async def query(ctx: HarnessContext, **properties: Any) -> QueryOutput:
    return await Query.model_validate(properties).run(ctx)


async def notes(db: Db) -> str:
    table = db.table("notes")
    await db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body VARCHAR(200))")
    return table


@pytest.mark.parametrize("attack", INJECTIONS)
async def test_injection_attempts_stay_literal_values(
    db: Db, ctx: HarnessContext, attack: str
) -> None:
    table = await notes(db)
    value = attack.format(table=table)
    await query(
        ctx,
        url=db.url,
        sql=f"INSERT INTO {table} (id, body) VALUES (:id, :body)",
        parameters={"id": 1, "body": value},
    )
    assert await db.exists(table)
    assert await db.rows(f"SELECT body FROM {table}") == [(value,)]
    found = await query(
        ctx,
        url=db.url,
        sql=f"SELECT count(*) AS n FROM {table} WHERE body = :body",
        parameters={"body": value},
        fetchType="FETCH_ONE",
    )
    assert found.row == {"n": 1}
    # The classic tautology matches nothing when bound as a value.
    nothing = await query(
        ctx,
        url=db.url,
        sql=f"SELECT count(*) AS n FROM {table} WHERE body = :body",
        parameters={"body": "nope' OR '1'='1"},
        fetchType="FETCH_ONE",
    )
    assert nothing.row == {"n": 0}


async def test_placeholders_in_literals_comments_and_casts_are_left_alone(
    db: Db, ctx: HarnessContext
) -> None:
    table = await notes(db)
    await db.execute(f"INSERT INTO {table} VALUES (1, 'a:b'), (2, '100% :x'), (3, 'z')")
    cast = "::text" if db.dialect == "postgresql" else ""
    out = await query(
        ctx,
        url=db.url,
        sql=(
            f"SELECT id, body{cast} AS body, ':literal' AS lit FROM {table} -- :comment\n"
            "WHERE (body LIKE '%:%' OR id = :id) /* :other */ AND id <> :skip ORDER BY id"
        ),
        parameters={"id": 3, "skip": 1},
        fetchType="FETCH",
    )
    assert out.rows == [
        {"id": 2, "body": "100% :x", "lit": ":literal"},
        {"id": 3, "body": "z", "lit": ":literal"},
    ]


async def test_a_name_used_twice_and_typed_values(db: Db, ctx: HarnessContext) -> None:
    out = await query(
        ctx,
        url=db.url,
        sql="SELECT :n AS a, :n AS b, :f AS f, :s AS s, :nothing AS z",
        parameters={"n": 7, "f": 2.5, "s": "text", "nothing": None},
        fetchType="FETCH_ONE",
    )
    assert out.row is not None
    # PostgreSQL types an untyped "SELECT $1" as text: the integer is sent as text.
    seven: object = "7" if db.dialect == "postgresql" else 7
    assert (out.row["a"], out.row["b"], out.row["s"], out.row["z"]) == (seven, seven, "text", None)
    assert float(out.row["f"]) == 2.5


async def test_in_lists_expand(db: Db, ctx: HarnessContext) -> None:
    table = await notes(db)
    await db.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    for sql in (
        f"SELECT id FROM {table} WHERE id IN :ids ORDER BY id",
        f"SELECT id FROM {table} WHERE id IN (:ids) ORDER BY id",
    ):
        out = await query(ctx, url=db.url, sql=sql, parameters={"ids": [1, 3]}, fetchType="FETCH")
        assert out.rows == [{"id": 1}, {"id": 3}]
        empty = await query(ctx, url=db.url, sql=sql, parameters={"ids": []}, fetchType="FETCH")
        assert empty.rows == []
    one = await query(
        ctx,
        url=db.url,
        sql=f"SELECT id FROM {table} WHERE id IN (:one) ORDER BY id",
        parameters={"one": 2},
        fetchType="FETCH",
    )
    assert one.rows == [{"id": 2}]


async def test_maps_and_lists_elsewhere_are_json_or_arrays(db: Db, ctx: HarnessContext) -> None:
    out = await query(
        ctx,
        url=db.url,
        sql="SELECT :doc AS doc",
        parameters={"doc": {"a": [1, 2]}},
        fetchType="FETCH_ONE",
    )
    assert out.row == {"doc": '{"a": [1, 2]}'}


async def test_postgres_arrays_and_any(pg: Db, ctx: HarnessContext) -> None:
    out = await query(
        ctx,
        url=pg.url,
        sql="SELECT 2 = ANY(:ids) AS has_two, cardinality(CAST(:ids AS int[])) AS n",
        parameters={"ids": [1, 2, 3]},
        fetchType="FETCH_ONE",
    )
    assert out.row == {"has_two": True, "n": 3}


async def test_postgres_text_values_are_converted_to_parameter_types(
    pg: Db, ctx: HarnessContext
) -> None:
    table = pg.table("typed")
    await pg.execute(
        f"CREATE TABLE {table} (d DATE, ts TIMESTAMPTZ, n INTEGER, amount NUMERIC(10, 2), "
        "ok BOOLEAN, u UUID, doc JSONB, label TEXT, tags INT[], span INTERVAL)"
    )
    await query(
        ctx,
        url=pg.url,
        sql=(
            f"INSERT INTO {table} "
            "VALUES (:d, :ts, :n, :amount, :ok, :u, :doc, :label, :tags, :span)"
        ),
        parameters={
            "d": "2024-05-01",
            "ts": "2024-05-01T10:00:00Z",
            "n": "42",
            "amount": "12.5",
            "ok": "true",
            "u": "12345678-1234-5678-1234-567812345678",
            "doc": {"k": [1, "v"]},
            "label": 7,
            "tags": "[1, 2]",
            "span": "PT90M",
        },
    )
    out = await query(
        ctx,
        url=pg.url,
        sql=f"SELECT * FROM {table} WHERE d >= :since AND n > :min",
        parameters={"since": "2024-01-01", "min": "41"},
        fetchType="FETCH_ONE",
    )
    assert out.row == {
        "d": "2024-05-01",
        "ts": "2024-05-01T10:00:00+00:00",
        "n": 42,
        "amount": "12.50",
        "ok": True,
        "u": "12345678-1234-5678-1234-567812345678",
        "doc": {"k": [1, "v"]},
        "label": "7",
        "tags": [1, 2],
        "span": "PT1H30M",
    }


async def test_postgres_bad_value_reports_the_parameter(pg: Db, ctx: HarnessContext) -> None:
    with pytest.raises(Exception, match=r"query failed: .*query argument \$1") as caught:
        await query(ctx, url=pg.url, sql="SELECT CAST(:n AS int) + 1", parameters={"n": "many"})
    assert type(caught.value).__name__ == "TaskFailure"


async def test_missing_parameters_are_a_user_error(ctx: HarnessContext) -> None:
    with pytest.raises(UserError) as caught:
        await query(ctx, url="jdbc:sqlite::memory:", sql="SELECT :a, :b, :a", parameters={"a": 1})
    assert str(caught.value) == "parameters: the SQL uses :b but no value is given for it"
    with pytest.raises(UserError, match="the SQL uses :x, :y"):
        await Queries.model_validate(
            {"url": "jdbc:sqlite::memory:", "sql": "SELECT :x; SELECT :y"}
        ).run(ctx)


async def test_parameters_are_shared_by_queries_statements(db: Db, ctx: HarnessContext) -> None:
    table = await notes(db)
    out = await Queries.model_validate(
        {
            "url": db.url,
            "sql": (
                f"INSERT INTO {table} VALUES (:id, :body); "
                f"UPDATE {table} SET body = :body || '!' WHERE id = :id; "
                f"SELECT body FROM {table} WHERE id = :id"
            )
            if db.dialect != "mysql"
            else (
                f"INSERT INTO {table} VALUES (:id, :body); "
                f"UPDATE {table} SET body = CONCAT(:body, '!') WHERE id = :id; "
                f"SELECT body FROM {table} WHERE id = :id"
            ),
            "parameters": {"id": 5, "body": "hi; there", "unused": True},
            "fetchType": "FETCH_ONE",
        }
    ).run(ctx)
    assert out.dump()["outputs"] == [{"row": {"body": "hi; there!"}, "size": 1}]
