"""plait.db.Queries: several statements, one transaction, outputs per statement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plait_db import Queries, QueriesOutput
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from .conftest import Db


async def queries(ctx: HarnessContext, **properties: Any) -> QueriesOutput:
    return await Queries.model_validate(properties).run(ctx)


async def accounts(db: Db) -> str:
    table = db.table("accounts")
    await db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, owner VARCHAR(40), balance INTEGER)",
        f"INSERT INTO {table} VALUES (1, 'ann', 100), (2, 'bob', 50)",
    )
    return table


async def test_a_script_runs_in_order_with_outputs_per_statement(
    db: Db, ctx: HarnessContext
) -> None:
    table = await accounts(db)
    out = await queries(
        ctx,
        url=db.url,
        sql=f"""
            -- move 30; from ann to bob
            UPDATE {table} SET balance = balance - 30 WHERE owner = 'ann';
            UPDATE {table} SET balance = balance + 30 WHERE owner = 'bob';
            INSERT INTO {table} VALUES (3, 'semi;colon', 0);
            SELECT owner, balance FROM {table} ORDER BY id;
            SELECT count(*) AS n FROM {table};
        """,
        fetchType="FETCH",
    )
    assert out.dump() == {
        "outputs": [
            {
                "rows": [
                    {"owner": "ann", "balance": 70},
                    {"owner": "bob", "balance": 80},
                    {"owner": "semi;colon", "balance": 0},
                ],
                "size": 3,
            },
            {"rows": [{"n": 3}], "size": 1},
        ],
        "statements": [
            {"returnsRows": False, "affectedRows": 1},
            {"returnsRows": False, "affectedRows": 1},
            {"returnsRows": False, "affectedRows": 1},
            {"returnsRows": True, "size": 3},
            {"returnsRows": True, "size": 1},
        ],
        "affectedRows": 3,
    }
    assert ("INFO", "statement 4 of 5: fetched 3 row(s)") in ctx.logs
    assert ctx.metrics == [("fetch.size", 4, "counter", {"fetch": "true", "store": "false"})]


async def test_a_list_of_statements(db: Db, ctx: HarnessContext) -> None:
    table = await accounts(db)
    out = await queries(
        ctx,
        url=db.url,
        sql=[
            f"UPDATE {table} SET owner = 'a;b' WHERE id = 1",
            f"SELECT owner FROM {table} WHERE id = 1;",
        ],
        fetchType="FETCH_ONE",
    )
    assert out.dump()["outputs"] == [{"row": {"owner": "a;b"}, "size": 1}]


async def test_store_per_statement(db: Db, ctx: HarnessContext) -> None:
    table = await accounts(db)
    out = await queries(
        ctx,
        url=db.url,
        sql=f"SELECT id FROM {table} ORDER BY id; SELECT owner FROM {table} WHERE id = 2",
        fetchType="STORE",
    )
    uris = [o.uri for o in out.outputs]
    assert [u.rsplit("/", 1)[1] for u in uris if u] == ["query-1.jsonl", "query-2.jsonl"]
    contents = [await ctx.storage.read_bytes(u) for u in uris if u]
    assert contents == [b'{"id":1}\n{"id":2}\n', b'{"owner":"bob"}\n']


async def test_failure_rolls_back_every_statement(db: Db, ctx: HarnessContext) -> None:
    table = await accounts(db)
    with pytest.raises(TaskFailure) as caught:
        await queries(
            ctx,
            url=db.url,
            sql=f"""
                UPDATE {table} SET balance = 0;
                INSERT INTO {table} VALUES (3, 'cy', 10);
                DELETE FROM {table} WHERE id = 2;
                INSERT INTO {table} VALUES (1, 'duplicate', 1);
                UPDATE {table} SET balance = -1;
            """,
        )
    assert str(caught.value).startswith("statement 4 of 5 failed: ")
    assert ("WARNING", "rolled back the transaction of 5 statement(s)") in ctx.logs
    # Nothing of statements 1-3 remains.
    assert await db.rows(f"SELECT id, owner, balance FROM {table} ORDER BY id") == [
        (1, "ann", 100),
        (2, "bob", 50),
    ]


async def test_failure_after_a_streamed_result_still_rolls_back(
    db: Db, ctx: HarnessContext
) -> None:
    table = await accounts(db)
    with pytest.raises(TaskFailure, match="statement 3 of 3 failed"):
        await queries(
            ctx,
            url=db.url,
            sql=[
                f"UPDATE {table} SET balance = 1",
                f"SELECT * FROM {table}",
                f"SELECT * FROM no_such_table_{table}",
            ],
            fetchType="STORE",
        )
    assert await db.rows(f"SELECT balance FROM {table} ORDER BY id") == [(100,), (50,)]


async def test_without_transaction_earlier_statements_stay(db: Db, ctx: HarnessContext) -> None:
    table = await accounts(db)
    with pytest.raises(TaskFailure, match="statement 2 of 3 failed"):
        await queries(
            ctx,
            url=db.url,
            transaction=False,
            sql=[
                f"UPDATE {table} SET balance = 0 WHERE id = 1",
                f"INSERT INTO {table} VALUES (2, 'duplicate', 1)",
                f"UPDATE {table} SET balance = 0 WHERE id = 2",
            ],
        )
    assert await db.rows(f"SELECT balance FROM {table} ORDER BY id") == [(0,), (50,)]


async def test_postgres_ddl_is_transactional_too(pg: Db, ctx: HarnessContext) -> None:
    table = pg.table("ddl")
    with pytest.raises(TaskFailure):
        await queries(
            ctx,
            url=pg.url,
            sql=f"CREATE TABLE {table} (id INT); INSERT INTO {table} VALUES (1); SELECT 1/0",
        )
    assert not await pg.exists(table)


async def test_postgres_streamed_table_can_be_dropped_later_in_the_transaction(
    pg: Db, ctx: HarnessContext
) -> None:
    table = pg.table("dropped")
    out = await queries(
        ctx,
        url=pg.url,
        sql=(
            f"CREATE TABLE {table} AS SELECT generate_series(1, 5) AS n; "
            f"SELECT n FROM {table} ORDER BY n; "
            f"DROP TABLE {table}"
        ),
        fetchType="STORE",
    )
    [stored] = out.outputs
    assert stored.size == 5
    assert stored.uri is not None
    lines = (await ctx.storage.read_bytes(stored.uri)).decode().splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 2, 3, 4, 5]
    assert not await pg.exists(table)


async def test_dollar_quoted_function_body(pg: Db, ctx: HarnessContext) -> None:
    function = pg.table("fn")
    try:
        out = await queries(
            ctx,
            url=pg.url,
            sql=f"""
                CREATE FUNCTION {function}(x int) RETURNS int AS $$
                BEGIN
                    RETURN x * 2; -- a semicolon inside the body
                END;
                $$ LANGUAGE plpgsql;
                SELECT {function}(21) AS answer;
            """,
            fetchType="FETCH_ONE",
        )
        assert out.outputs[0].row == {"answer": 42}
    finally:
        await pg.execute(f"DROP FUNCTION IF EXISTS {function}(int)")


async def test_sqlite_trigger_body(sqlite: Db, ctx: HarnessContext) -> None:
    table, log = sqlite.table("items"), sqlite.table("log")
    out = await queries(
        ctx,
        url=sqlite.url,
        sql=f"""
            CREATE TABLE {table} (id INTEGER);
            CREATE TABLE {log} (msg TEXT);
            CREATE TRIGGER {table}_ins AFTER INSERT ON {table} BEGIN
                INSERT INTO {log} VALUES ('added; ' || NEW.id);
            END;
            INSERT INTO {table} VALUES (1), (2);
            SELECT msg FROM {log} ORDER BY msg;
        """,
        fetchType="FETCH",
    )
    assert out.outputs[0].rows == [{"msg": "added; 1"}, {"msg": "added; 2"}]


async def test_kestra_style_rendered_script(db: Db, ctx: HarnessContext) -> None:
    """A script templated with a loop (as in Kestra's docs) splits on its semicolons."""
    table = await accounts(db)
    script = " ".join(
        f"INSERT INTO {table} (id, owner, balance) VALUES ({i}, 'user{i}', {i});"
        for i in range(10, 15)
    )
    out = await queries(ctx, url=db.url, sql=script)
    assert out.affected_rows == 5
    assert len(out.statements) == 5


async def test_mariadb_procedure_in_list_form(mysql: Db, ctx: HarnessContext) -> None:
    procedure = mysql.table("proc")
    try:
        out = await queries(
            ctx,
            url=mysql.url,
            sql=[
                f"""CREATE PROCEDURE {procedure}(IN n INT)
                BEGIN
                    DECLARE x INT DEFAULT 0;
                    lbl: LOOP
                        SET x = x + 1;
                        IF x >= n THEN LEAVE lbl; END IF;
                    END LOOP;
                    SELECT x AS counted, 'a;b' AS text;
                END""",
                f"CALL {procedure}(:n);",
            ],
            parameters={"n": 4},
            fetchType="FETCH",
        )
        assert out.outputs[0].rows == [{"counted": 4, "text": "a;b"}]
    finally:
        await mysql.execute(f"DROP PROCEDURE IF EXISTS {procedure}")
