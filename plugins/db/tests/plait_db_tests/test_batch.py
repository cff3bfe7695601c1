"""plait.db.Batch: rows of a JSON-lines or CSV file inserted chunk by chunk, on the three
databases; bad rows fail with their line number."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from plait.flows import State
from plait_db import Batch, Query
from plait_sdk import TaskFailure, UserError
from plait_sdk.testing import HarnessContext

from .conftest import Db, Harness

TABLE = {
    "postgresql": "id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, score INTEGER, "
    "joined DATE, tags TEXT",
    "mysql": "id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, score INTEGER, "
    "joined DATE, tags TEXT",
    "sqlite": "id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, score INTEGER, "
    "joined DATE, tags TEXT",
}


def jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


async def put(ctx: HarnessContext, name: str, data: bytes) -> str:
    return await ctx.storage.put(name, data)


async def people(db: Db) -> str:
    table = db.table("people")
    await db.execute(f"CREATE TABLE {table} ({TABLE[db.dialect]})")
    return table


def batch(db: Db, uri: str, **props: Any) -> Batch:
    return Batch.model_validate({"url": db.url, "from": uri, **props})


ROWS = [
    {"id": 1, "name": "Ada", "score": 90, "joined": "2024-05-01", "tags": ["a", "b"]},
    {"id": 2, "name": "Bob", "score": None, "joined": None, "tags": None},
    {"id": 3, "name": "Cy", "score": "75", "joined": "2024-06-30", "tags": {"k": 1}},
]


async def test_positional_placeholders_from_json_lines(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    uri = await put(ctx, "rows.jsonl", jsonl(ROWS))
    task = batch(db, uri, sql=f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", chunk=2)
    out = await task.run(ctx)
    assert (out.row_count, out.updated_count) == (3, 3)
    assert out.dump() == {"rowCount": 3, "updatedCount": 3}
    rows = await db.rows(f"SELECT id, name, score, tags FROM {table} ORDER BY id")
    assert rows == [(1, "Ada", 90, '["a", "b"]'), (2, "Bob", None, None), (3, "Cy", 75, '{"k": 1}')]
    [(joined,)] = await db.rows(f"SELECT joined FROM {table} WHERE id = 1")
    assert str(joined) == "2024-05-01"
    assert ("records", 3, "counter", {}) in ctx.metrics
    assert ("updated", 3, "counter", {}) in ctx.metrics
    assert "loaded 3 row(s) in 2 chunk(s)" in ctx.log_text


async def test_named_placeholders_take_values_by_key(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    lines = [{"name": "Ada", "id": 1, "extra": "ignored"}, {"id": 2, "name": "Bob"}]
    uri = await put(ctx, "rows.jsonl", jsonl(lines))
    task = batch(
        db,
        uri,
        sql=f"INSERT INTO {table} (id, name, score) VALUES (:id, :name, :score)",
    )
    out = await task.run(ctx)
    assert out.row_count == 2
    assert await db.rows(f"SELECT id, name, score FROM {table} ORDER BY id") == [
        (1, "Ada", None),
        (2, "Bob", None),
    ]


async def test_columns_pick_and_order_object_values(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    lines = [{"zzz": 0, "name": "Ada", "id": 1}, {"id": 2, "name": "Bob", "zzz": 0}]
    uri = await put(ctx, "rows.jsonl", jsonl(lines))
    task = batch(
        db, uri, sql=f"INSERT INTO {table} (id, name) VALUES (?, ?)", columns=["id", "name"]
    )
    await task.run(ctx)
    assert await db.rows(f"SELECT id, name FROM {table} ORDER BY id") == [(1, "Ada"), (2, "Bob")]


async def test_table_with_and_without_columns(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    uri = await put(ctx, "rows.jsonl", jsonl(ROWS[:2]))
    out = await batch(db, uri, table=table).run(ctx)
    assert out.row_count == 2
    uri = await put(ctx, "more.jsonl", jsonl([{"name": "Dee", "id": 4}, [5, "Eve"]]))
    await batch(db, uri, table=table, columns=["id", "name"]).run(ctx)
    assert await db.rows(f"SELECT id, name, score FROM {table} ORDER BY id") == [
        (1, "Ada", 90),
        (2, "Bob", None),
        (4, "Dee", None),
        (5, "Eve", None),
    ]


async def test_csv_with_header_quotes_and_empty_fields(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    data = (
        b"id,name,score,joined,tags\r\n"
        b'1,"Ada, Countess",90,2024-05-01,"line one\nline ""two"""\r\n'
        b"2,Bob,,,\r\n"
        b"\r\n"
        b"3,Cy,75,2024-06-30,x\r\n"
    )
    uri = await put(ctx, "people.csv", data)
    out = await batch(db, uri, table=table).run(ctx)
    assert out.row_count == 3
    assert await db.rows(f"SELECT id, name, score, tags FROM {table} ORDER BY id") == [
        (1, "Ada, Countess", 90, 'line one\nline "two"'),
        (2, "Bob", None, None),
        (3, "Cy", 75, "x"),
    ]


async def test_csv_without_header_and_another_separator(sqlite: Db, ctx: HarnessContext) -> None:
    table = await people(sqlite)
    uri = await put(ctx, "people.txt", b"1;Ada;90\n2;Bob;\n")
    task = batch(
        sqlite,
        uri,
        sql=f"INSERT INTO {table} (id, name, score) VALUES (?, ?, ?)",
        format="csv",
        header=False,
        fieldSeparator=";",
    )
    await task.run(ctx)
    assert await sqlite.rows(f"SELECT id, name, score FROM {table} ORDER BY id") == [
        (1, "Ada", 90),
        (2, "Bob", None),
    ]


async def test_upsert_counts_only_rows_touched(pg: Db, ctx: HarnessContext) -> None:
    table = await people(pg)
    await pg.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'old')")
    uri = await put(ctx, "rows.jsonl", jsonl([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}]))
    task = batch(
        pg,
        uri,
        sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name) ON CONFLICT (id) DO NOTHING",
    )
    out = await task.run(ctx)
    assert (out.row_count, out.updated_count) == (2, 1)
    assert await pg.rows(f"SELECT id, name FROM {table} ORDER BY id") == [(1, "old"), (2, "Bob")]


async def test_update_statements_count_matched_rows(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    await db.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    uri = await put(ctx, "rows.jsonl", jsonl([[10, 1], [30, 3], [99, 9]]))
    out = await batch(db, uri, sql=f"UPDATE {table} SET score = ? WHERE id = ?").run(ctx)
    assert (out.row_count, out.updated_count) == (3, 2)
    assert await db.rows(f"SELECT id, score FROM {table} ORDER BY id") == [
        (1, 10),
        (2, None),
        (3, 30),
    ]


# -- bad rows -----------------------------------------------------------------------------------


def bad_file(bad_line: int, total: int, bad: str) -> bytes:
    lines = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(1, total + 1)]
    lines[bad_line - 1] = bad
    return ("\n".join(lines) + "\n").encode()


async def test_invalid_json_names_its_line_and_earlier_chunks_stay(
    db: Db, ctx: HarnessContext
) -> None:
    table = await people(db)
    uri = await put(ctx, "rows.jsonl", bad_file(7, 10, '{"id": 7, "name": '))
    task = batch(db, uri, sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name)", chunk=3)
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    message = str(failure.value)
    assert message.startswith("line 7: not valid JSON: Expecting value (column 18)"), message
    assert "the 6 row(s) of the chunks before it stay committed" in message
    assert await db.rows(f"SELECT count(*) FROM {table}") == [(6,)]


async def test_atomic_load_commits_nothing_on_a_bad_row(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    uri = await put(ctx, "rows.jsonl", bad_file(8, 10, "[8]"))
    task = batch(
        db, uri, sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name)", chunk=3, atomic=True
    )
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    assert str(failure.value) == "line 8: 1 value(s) for 2 column(s); nothing was committed"
    assert await db.rows(f"SELECT count(*) FROM {table}") == [(0,)]


async def test_database_error_names_the_failing_line(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    # Line 6 repeats id 2 (a duplicate key), in the middle of the second chunk of 4.
    uri = await put(ctx, "rows.jsonl", bad_file(6, 9, json.dumps({"id": 2, "name": "dup"})))
    task = batch(db, uri, sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name)", chunk=4)
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    message = str(failure.value)
    assert message.startswith("line 6: "), message
    expected = {
        "postgresql": "duplicate key value violates unique constraint",
        "mysql": "Duplicate entry '2' for key 'PRIMARY' [error 1062]",
        "sqlite": "UNIQUE constraint failed",
    }[db.dialect]
    assert expected in message
    assert message.endswith(
        "the 4 row(s) of the chunks before it stay committed (atomic: true loads all or nothing)"
    )
    assert await db.rows(f"SELECT count(*) FROM {table}") == [(4,)]


async def test_atomic_database_error_rolls_everything_back(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    uri = await put(ctx, "rows.jsonl", bad_file(9, 9, json.dumps({"id": 9, "name": None})))
    task = batch(
        db, uri, sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name)", chunk=4, atomic=True
    )
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    message = str(failure.value)
    assert message.startswith("line 9: "), message
    assert message.endswith("; nothing was committed")
    assert await db.rows(f"SELECT count(*) FROM {table}") == [(0,)]
    # The connection went back to the pool clean: the next task run works.
    uri = await put(ctx, "ok.jsonl", jsonl([{"id": 1, "name": "a"}]))
    out = await batch(db, uri, table=table).run(ctx)
    assert out.row_count == 1


async def test_value_of_the_wrong_type_names_its_line(pg: Db, ctx: HarnessContext) -> None:
    table = await people(pg)
    uri = await put(ctx, "rows.csv", b"id,name,score\n1,Ada,90\n2,Bob,ninety\n")
    with pytest.raises(TaskFailure) as failure:
        await batch(pg, uri, table=table, columns=["id", "name", "score"]).run(ctx)
    message = str(failure.value)
    assert message.startswith("line 3: "), message
    assert "ninety" in message


async def test_csv_errors_name_their_line(sqlite: Db, ctx: HarnessContext) -> None:
    table = await people(sqlite)
    uri = await put(ctx, "rows.csv", b"id,name\n1,Ada\n2,Bob,extra\n")
    with pytest.raises(TaskFailure, match=r"^line 3: 3 field\(s\) but the header has 2 column"):
        await batch(sqlite, uri, table=table, columns=["id", "name"]).run(ctx)


async def test_configuration_errors(sqlite: Db, ctx: HarnessContext) -> None:
    uri = await put(ctx, "rows.jsonl", jsonl([[1]]))
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "set sql"),
        ({"sql": "INSERT INTO t VALUES (?, :x)"}, "mixes ? and :name"),  # (not on PostgreSQL)
        ({"sql": "INSERT INTO t VALUES (1)"}, "has no placeholder"),
        ({"sql": "INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)"}, "must be one statement"),
        ({"sql": "INSERT INTO t VALUES (?, ?)", "columns": ["a"]}, "1 column(s) for 2"),
    ]
    for props, expected in cases:
        with pytest.raises(UserError) as error:
            await batch(sqlite, uri, **props).run(ctx)
        assert expected in str(error.value)
    with pytest.raises(ValueError, match="single character"):
        batch(sqlite, uri, table="t", fieldSeparator=";;")


async def test_missing_table_fails_before_reading(pg: Db, ctx: HarnessContext) -> None:
    uri = await put(ctx, "rows.jsonl", jsonl([[1]]))
    with pytest.raises(TaskFailure, match=r"cannot prepare the statement: .*does not exist"):
        await batch(pg, uri, sql="INSERT INTO plait_no_such_table VALUES (?)").run(ctx)
    with pytest.raises(TaskFailure, match=r"cannot read the columns of plait_no_such_table"):
        await batch(pg, uri, table="plait_no_such_table").run(ctx)


async def test_postgres_types_and_time_zone(pg: Db, ctx: HarnessContext) -> None:
    table = pg.table("types")
    await pg.execute(
        f"CREATE TABLE {table} (id BIGINT, amount NUMERIC(10, 2), at TIMESTAMPTZ, ok BOOLEAN, "
        "doc JSONB, ids INT[], span INTERVAL)"
    )
    lines = [
        {
            "id": "1",
            "amount": "12.50",
            "at": "2024-05-01T10:00:00",
            "ok": "true",
            "doc": {"a": [1, 2]},
            "ids": [1, 2],
            "span": "PT1H30M",
        }
    ]
    uri = await put(ctx, "rows.jsonl", jsonl(lines))
    await batch(pg, uri, table=table, timeZoneId="Europe/Paris").run(ctx)
    [row] = await pg.rows(
        f"SELECT id, amount::text, to_char(at AT TIME ZONE 'UTC', 'HH24:MI'), ok, doc->>'a', "
        f"ids, span::text FROM {table}"
    )
    assert row == (1, "12.50", "08:00", True, "[1, 2]", [1, 2], "01:30:00")


# -- a whole flow, and big files ------------------------------------------------------------------


async def test_store_then_batch_copies_a_table_between_databases(
    harness: Harness, pg: Db, sqlite: Db
) -> None:
    source = await people(pg)
    await pg.execute(
        f"INSERT INTO {source} (id, name, score, joined) "
        "SELECT g, 'name ' || g, g * 10, DATE '2024-01-01' + g FROM generate_series(1, 250) g"
    )
    target = await people(sqlite)
    execution = await harness.run(
        f"""
        id: copy
        namespace: tests.db
        tasks:
          - id: export
            type: io.kestra.plugin.jdbc.postgresql.Query
            url: {pg.jdbc}
            sql: SELECT id, name, score, joined, tags FROM {source} ORDER BY id
            fetchType: STORE
          - id: import
            type: io.kestra.plugin.jdbc.sqlite.Batch
            from: "{{{{ outputs.export.uri }}}}"
            url: {sqlite.jdbc}
            sql: INSERT INTO {target} VALUES (?, ?, ?, ?, ?)
            chunk: 100
        """
    )
    assert execution.state is State.SUCCESS, execution.error
    [run] = [r for r in execution.task_runs if r.task_id == "import"]
    assert run.outputs == {"rowCount": 250, "updatedCount": 250}
    assert await sqlite.rows(f"SELECT count(*), sum(score), max(joined) FROM {target}") == [
        (250, 313750, "2024-09-07")
    ]


BIG = 100_000
#: Python memory at the peak while loading 100,000 rows (10.6 MiB of JSON lines): about 7 MiB
#: (one 1 MiB chunk of the file, its lines, a chunk of rows, the driver's buffers), the same for
#: 20,000 rows as for 100,000. The whole file's rows would take over 60 MiB.
BATCH_PEAK_LIMIT = 9 * 1024 * 1024


async def _big_file(rows: int) -> AsyncIterator[bytes]:
    block = 5000
    for start in range(1, rows + 1, block):
        stop = min(start + block, rows + 1)
        yield "".join(
            f'{{"id": {i}, "name": "name {i:07d} {"x" * 20}", "score": {i % 1000}, '
            f'"joined": "2024-01-{i % 28 + 1:02d}", "tags": null}}\n'
            for i in range(start, stop)
        ).encode()


@pytest.mark.slow
async def test_100k_rows_with_flat_memory(db: Db, ctx: HarnessContext) -> None:
    table = await people(db)
    uri = await ctx.storage.put("big.jsonl", _big_file(BIG))
    size = await ctx.storage.size(uri)
    task = batch(db, uri, sql=f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)")
    tracemalloc.start()
    try:
        started = time.monotonic()
        out = await task.run(ctx)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (out.row_count, out.updated_count) == (BIG, BIG)
    assert size > 10 * 1024 * 1024
    assert peak < BATCH_PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB for {size / 2**20:.1f} MiB"
    print(
        f"\n{db.dialect}: {BIG} rows ({size / 2**20:.1f} MiB) in {elapsed:.1f}s, "
        f"peak {peak / 2**20:.1f} MiB"
    )
    assert await db.rows(f"SELECT count(*), sum(score), max(id) FROM {table}") == [
        (BIG, sum(i % 1000 for i in range(1, BIG + 1)), BIG)
    ]
    # And back out with STORE, to the same rows.
    stored = await Query.model_validate(
        {"url": db.url, "sql": f"SELECT * FROM {table} ORDER BY id", "fetchType": "STORE"}
    ).run(ctx)
    assert stored.size == BIG


async def test_postgres_jsonb_question_mark_with_named_placeholders(
    pg: Db, ctx: HarnessContext
) -> None:
    table = pg.table("docs")
    await pg.execute(f"CREATE TABLE {table} (id INTEGER, doc JSONB, tagged BOOLEAN)")
    uri = await put(ctx, "rows.jsonl", jsonl([{"id": 1, "doc": {"tag": 1}}, {"id": 2, "doc": {}}]))
    sql = f"INSERT INTO {table} SELECT :id, CAST(:doc AS JSONB), CAST(:doc AS JSONB) ? 'tag'"
    await batch(pg, uri, sql=sql).run(ctx)
    assert await pg.rows(f"SELECT id, tagged FROM {table} ORDER BY id") == [(1, True), (2, False)]


@pytest.mark.services
async def test_a_killed_load_leaves_no_open_transaction(pg: Db, ctx: HarnessContext) -> None:
    table = await people(pg)
    uri = await ctx.storage.put("big.jsonl", _big_file(BIG))
    task = batch(pg, uri, sql=f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", chunk=500)
    running = asyncio.ensure_future(task.run(ctx))
    for _ in range(1000):  # until the first chunks are committed
        if await pg.rows(f"SELECT 1 FROM {table} LIMIT 1"):
            break
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # Whole chunks only, and no session left inside a transaction on the table.
    [(count,)] = await pg.rows(f"SELECT count(*) FROM {table}")
    assert 0 < count < BIG
    assert count % 500 == 0
    for _ in range(100):
        idle = await pg.rows(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        )
        if idle == [(0,)]:
            break
        await asyncio.sleep(0.05)
    assert idle == [(0,)]
