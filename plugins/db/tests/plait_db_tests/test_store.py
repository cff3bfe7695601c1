"""STORE streams big results to internal storage with flat memory."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from plait_db import Query

from .conftest import Db, FakeContext

ROWS = 200_000
#: Python memory allowed at the peak while storing ~45 MB of JSON lines: a few batches of
#: ``fetchSize`` rows, nowhere near the whole result (FETCH of the same rows needs > 300 MB).
PEAK_LIMIT = 24 * 1024 * 1024

FILL = {
    "postgresql": (
        "INSERT INTO {t} SELECT g, md5(g::text) || repeat('x', 120), g * 1.25, "
        "TIMESTAMP '2024-01-01' + g * INTERVAL '1 second' FROM generate_series(1, {n}) AS g"
    ),
    "mysql": (
        "INSERT INTO {t} SELECT seq, CONCAT(MD5(seq), REPEAT('x', 120)), seq * 1.25, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{n}"
    ),
    "sqlite": (
        "INSERT INTO {t} WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g "
        "WHERE x < {n}) SELECT x, hex(randomblob(16)) || printf('%.120c', 'x'), x * 1.25, "
        "datetime('2024-01-01', '+' || x || ' seconds') FROM g"
    ),
}


@pytest.mark.slow
async def test_store_200k_rows_with_flat_memory(db: Db, ctx: FakeContext) -> None:
    table = db.table("big")
    await db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload VARCHAR(200), "
        "amount NUMERIC(12, 2), at TIMESTAMP NULL)",
        FILL[db.dialect].format(t=table, n=ROWS),
    )
    task = Query.model_validate(
        {"url": db.url, "sql": f"SELECT * FROM {table} ORDER BY id", "fetchType": "STORE"}
    )
    tracemalloc.start()
    try:
        started = time.monotonic()
        out = await task.run(ctx)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert out.size == ROWS
    assert out.uri is not None
    size = await ctx.storage.size(out.uri)
    assert size > 40 * 1024 * 1024, size
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB while storing {size / 2**20:.1f} MiB"
    print(
        f"\n{db.dialect}: {ROWS} rows, {size / 2**20:.1f} MiB in {elapsed:.1f}s, "
        f"peak {peak / 2**20:.1f} MiB"
    )

    count, first, last = 0, None, None
    async for line in _lines(ctx, out.uri):
        count += 1
        if first is None:
            first = json.loads(line)
        last = line
    assert count == ROWS
    assert first is not None
    assert first["id"] == 1
    assert first["amount"] == (1.25 if db.dialect == "sqlite" else "1.25")
    assert last is not None
    assert json.loads(last)["id"] == ROWS


async def _lines(ctx: FakeContext, uri: str):  # type: ignore[no-untyped-def]
    pending = b""
    async for chunk in ctx.storage.open(uri):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
    if pending:
        yield pending
