"""plait-db benchmarks: `.venv/bin/python bench/bench_db.py [--store-rows N] [--batch-rows N]`.

- STORE: `plait.db.Query` with `fetchType: STORE` of a whole table (`SELECT * ... ORDER BY id`)
  into a JSON-lines file in internal storage on the local disk, in rows per second. The table is
  filled server-side first (id, a 60-character name, an integer, a NUMERIC(12,2), a timestamp).
- Batch: `plait.db.Batch` of a JSON-lines file of the same rows into an empty table
  (`INSERT ... VALUES (?, ?, ?, ?, ?)`, chunks of 1,000 rows, each committed), in rows per
  second. Next to it, for reference, the driver alone inserting the same rows already as tuples
  in the same chunks and transactions (asyncpg `executemany`, aiomysql `executemany`, sqlite3
  `executemany`): what is left is the reading, parsing and binding of the file.

Databases: PostgreSQL on 127.0.0.1:5432 (user postgres, database test), MariaDB on 127.0.0.1:3306
(user root, no password, database test), SQLite in a temporary file; `PLAIT_DB_TEST_POSTGRES` /
`PLAIT_DB_TEST_MYSQL` (SQLAlchemy URLs) override the servers. A server that does not answer is
left out of the table. Best of `--runs` runs of each measure. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from _context import BenchContext
from plait_db import ENGINES, Batch, Query
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MiB = 1 << 20
CHUNK = 1000
FIELDS = ("id", "name", "score", "amount", "created")
SERVERS = {
    "postgresql": os.environ.get(
        "PLAIT_DB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("PLAIT_DB_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
}
NAMES = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "sqlite": "SQLite"}
ASYNC = {
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}
COLUMNS = (
    "id INTEGER PRIMARY KEY, name VARCHAR(60) NOT NULL, score INTEGER, "
    "amount NUMERIC(12, 2), created {ts}"
)
FILL = {
    "postgresql": (
        "INSERT INTO {t} SELECT g, 'customer ' || md5(g::text), g % 1000, g * 0.25, "
        "TIMESTAMP '2024-01-01' + g * INTERVAL '1 second' FROM generate_series(1, {n}) AS g"
    ),
    "mysql": (
        "INSERT INTO {t} SELECT seq, CONCAT('customer ', MD5(seq)), seq % 1000, seq * 0.25, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{n}"
    ),
    "sqlite": (
        "INSERT INTO {t} WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g "
        "WHERE x < {n}) SELECT x, 'customer ' || lower(hex(randomblob(16))), x % 1000, "
        "x * 0.25, datetime('2024-01-01', '+' || x || ' seconds') FROM g"
    ),
}


# -- databases -----------------------------------------------------------------------------------


def reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 0), timeout=2).close()
    except OSError:
        return False
    return True


class Database:
    """One database under test: a URL for the tasks, an engine to set up tables."""

    def __init__(self, dialect: str, url: str) -> None:
        self.dialect = dialect
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            make_url(url).set(drivername=ASYNC[dialect]), poolclass=NullPool
        )
        self.tables: list[str] = []

    async def execute(self, *statements: str) -> None:
        async with self.engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))

    async def create(self, rows: int = 0) -> str:
        table = f"plait_bench_{uuid.uuid4().hex[:10]}"
        self.tables.append(table)
        ts = "DATETIME" if self.dialect == "mysql" else "TIMESTAMP"
        await self.execute(f"CREATE TABLE {table} ({COLUMNS.format(ts=ts)})")
        if rows:
            await self.execute(FILL[self.dialect].format(t=table, n=rows))
        return table

    async def count(self, table: str) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())

    async def close(self) -> None:
        for table in self.tables:
            await self.execute(f"DROP TABLE IF EXISTS {table}")
        await self.engine.dispose()


def row_values(i: int) -> tuple[int, str, int, str, str]:
    seconds = i % 86_400
    created = f"2024-01-{1 + i // 86_400 % 28:02d} {seconds // 3600:02d}:"
    created += f"{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return i, f"customer {uuid.UUID(int=i).hex}", i % 1000, f"{i * 0.25:.2f}", created


async def json_lines(rows: int) -> AsyncIterator[bytes]:
    for start in range(1, rows + 1, 10_000):
        yield "".join(
            json.dumps(dict(zip(FIELDS, row_values(i), strict=True)), separators=(",", ":")) + "\n"
            for i in range(start, min(start + 10_000, rows + 1))
        ).encode()


# -- measures ------------------------------------------------------------------------------------


async def store(db: Database, rows: int, root: Path) -> tuple[float, int]:
    """Seconds to STORE a table of ``rows`` rows, and the file's size."""
    table = await db.create(rows)
    task = Query.model_validate(
        {"url": db.url, "sql": f"SELECT * FROM {table} ORDER BY id", "fetchType": "STORE"}
    )
    ctx = BenchContext(root)
    started = time.perf_counter()
    out = await task.run(ctx)
    elapsed = time.perf_counter() - started
    assert out.size == rows, out
    assert out.uri is not None
    size = await ctx.storage.size(out.uri)
    await db.execute(f"DROP TABLE {table}")
    return elapsed, size


async def batch(db: Database, uri: str, rows: int, root: Path) -> float:
    """Seconds for plait.db.Batch to insert the ``rows`` rows of the file ``uri``."""
    table = await db.create()
    task = Batch.model_validate(
        {
            "url": db.url,
            "from": uri,
            "sql": f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)",
            "chunk": CHUNK,
        }
    )
    started = time.perf_counter()
    out = await task.run(BenchContext(root))
    elapsed = time.perf_counter() - started
    assert out.row_count == rows, out
    assert await db.count(table) == rows
    await db.execute(f"DROP TABLE {table}")
    return elapsed


async def driver_alone(db: Database, rows: int) -> float:
    """Seconds for the bare driver to insert the same rows, already as typed tuples."""
    import datetime as dt
    from decimal import Decimal

    table = await db.create()
    values = [row_values(i) for i in range(1, rows + 1)]
    typed = [
        (i, name, score, Decimal(amount), dt.datetime.fromisoformat(created))
        for i, name, score, amount, created in values
    ]
    chunks = [typed[i : i + CHUNK] for i in range(0, rows, CHUNK)]
    url = make_url(db.url)
    started = time.perf_counter()
    if db.dialect == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(
            user=url.username, password=url.password, host=url.host, port=url.port,
            database=url.database,
        )  # fmt: skip
        statement = await conn.prepare(f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)")
        for chunk in chunks:
            async with conn.transaction():
                await statement.executemany(chunk)
        await conn.close()
    elif db.dialect == "mysql":
        import aiomysql

        conn = await aiomysql.connect(
            user=url.username or "root", password=url.password or "", host=url.host or "",
            port=url.port or 3306, db=url.database, autocommit=False,
        )  # fmt: skip
        async with conn.cursor() as cursor:
            for chunk in chunks:
                await cursor.executemany(
                    f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)",
                    [(i, n, s, a, c.isoformat(" ")) for i, n, s, a, c in chunk],
                )
                await conn.commit()
        conn.close()
    else:
        path = str(url.database)

        def insert() -> None:
            with sqlite3.connect(path) as conn:
                for chunk in chunks:
                    conn.executemany(
                        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)",
                        [(i, n, s, str(a), c.isoformat(" ")) for i, n, s, a, c in chunk],
                    )
                    conn.commit()

        await asyncio.to_thread(insert)
    elapsed = time.perf_counter() - started
    assert await db.count(table) == rows
    await db.execute(f"DROP TABLE {table}")
    return elapsed


async def main(store_rows: int, batch_rows: int, runs: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="plait-bench-db-"))
    databases = [Database(d, u) for d, u in SERVERS.items() if reachable(u)]
    missing = [NAMES[d] for d, u in SERVERS.items() if not reachable(u)]
    databases.append(Database("sqlite", f"sqlite:///{root / 'bench.sqlite'}"))
    ctx = BenchContext(root)
    uri = await ctx.storage.put("rows.jsonl", json_lines(batch_rows))
    file_size = await ctx.storage.size(uri)
    results: list[tuple[str, ...]] = []
    try:
        for db in databases:
            name = NAMES[db.dialect]
            best = min([await store(db, store_rows, root) for _ in range(runs)])
            seconds, size = best
            results.append(
                (
                    f"STORE, {name}",
                    f"{store_rows:,}",
                    f"{seconds:.2f} s",
                    f"{store_rows / seconds:,.0f}",
                    f"{size / MiB / seconds:.1f} MiB/s of JSON lines",
                )
            )
            seconds = min([await batch(db, uri, batch_rows, root) for _ in range(runs)])
            alone = min([await driver_alone(db, batch_rows) for _ in range(runs)])
            results.append(
                (
                    f"Batch, {name}",
                    f"{batch_rows:,}",
                    f"{seconds:.2f} s",
                    f"{batch_rows / seconds:,.0f}",
                    f"driver alone: {batch_rows / alone:,.0f} rows/s",
                )
            )
            await ENGINES.dispose_all()
    finally:
        await ENGINES.dispose_all()
        for db in databases:
            await db.close()
    command = shlex.join([".venv/bin/python", "bench/bench_db.py", *sys.argv[1:]])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"`{command}`\n")
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load}; best of {runs} run(s); servers on "
        f"127.0.0.1; Batch file {file_size / MiB:.1f} MiB of JSON lines, chunks of {CHUNK}."
        + (f" Not reachable, left out: {', '.join(missing)}." if missing else "")
        + "\n"
    )
    print("| measure | rows | time | rows/s | note |")
    print("| --- | --- | --- | --- | --- |")
    for row in results:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store-rows", type=int, default=500_000, help="default 500,000")
    parser.add_argument("--batch-rows", type=int, default=200_000, help="default 200,000")
    parser.add_argument("--runs", type=int, default=1, help="best of N runs (default 1)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.store_rows, arguments.batch_rows, max(1, arguments.runs)))
