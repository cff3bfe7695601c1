"""The ``plait.db.Batch`` task: bulk-insert the rows of a file from internal storage."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait_sdk import Example, Output, RunContext, TaskFailure, UserError
from pydantic import Field, field_validator

from plait_db._errors import describe
from plait_db._files import Block, FileFormat, Row, RowError, csv_rows, format_of, json_rows
from plait_db._sql import Dialect, driver_sql, parse
from plait_db._tasks import _aliases, _Connected, _Database
from plait_db._urls import Target
from plait_db._values import bindable, postgres_converter

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Converter = Callable[[Any], Any]
#: Statements whose rows a PostgreSQL ``RETURNING 1`` counts exactly.
_COUNTABLE = frozenset({"INSERT", "UPDATE", "DELETE"})
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NAME_PART = re.compile(r'"(?:[^"]|"")*"|`(?:[^`]|``)*`|[^.]+')
_SAVEPOINT = "plait_batch_chunk"


class BatchOutput(Output):
    """What a batch loaded."""

    row_count: int
    """Rows read from the file and sent to the database."""
    updated_count: int
    """Rows inserted, updated or deleted, as the database counts them (an ``INSERT ... ON
    CONFLICT DO NOTHING`` that skips a row does not count it; MySQL counts an upsert that
    updates a row twice)."""
    database_uri: str | None = None
    """Internal-storage URI of the SQLite database file (``outputDbFile: true``)."""


@dataclass(frozen=True)
class _Plan:
    """The statement in the driver's placeholder style and how a row fills it."""

    sql: str
    names: tuple[str, ...]
    """The value bound at each driver position: a placeholder name, a column, or ``?n``."""
    positional: bool
    """``?`` placeholders: rows give their values in order."""
    countable: bool
    """PostgreSQL: the statement may get ``RETURNING 1`` to count the rows it touches."""


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- binding rows --------------------------------------------------------------------------------


class _Binder:
    """Turns one row of the file into the tuple of driver values of the statement."""

    def __init__(
        self, plan: _Plan, columns: Sequence[str] | None, converters: Sequence[Converter]
    ) -> None:
        self.names = plan.names
        self.positional = plan.positional
        self.columns = list(columns) if columns else None
        self.converters = list(converters)
        distinct = list(dict.fromkeys(plan.names))
        index = {name: i for i, name in enumerate(distinct)}
        self.expected = len(plan.names) if plan.positional else len(distinct)
        self.indexes = [index[name] for name in plan.names]
        self.pairs = list(zip(self.converters, self.names, strict=True))

    def __call__(self, line: int, row: Row) -> tuple[Any, ...]:
        if isinstance(row, dict):
            if not self.positional:
                return tuple([convert(row.get(name)) for convert, name in self.pairs])
            values = [row.get(c) for c in self.columns] if self.columns else list(row.values())
        else:
            values = row
        if len(values) != self.expected:
            what = "placeholder(s)" if self.positional else "column(s)"
            raise RowError(line, f"{len(values)} value(s) for {self.expected} {what}")
        if self.positional:
            return tuple([convert(v) for convert, v in zip(self.converters, values, strict=True)])
        return tuple(
            [convert(values[i]) for convert, i in zip(self.converters, self.indexes, strict=True)]
        )


def _postgres_converter(type_name: str, kind: str, zone: ZoneInfo | None) -> Converter:
    convert = postgres_converter(type_name, kind)
    if zone is None or type_name != "timestamptz":
        return convert

    def in_zone(value: Any) -> Any:
        value = convert(value)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value

    return in_zone


def _plain(dialect: Dialect) -> Converter:
    plain = frozenset({str, int, float, bool, type(None)})

    def convert(value: Any) -> Any:
        return value if type(value) in plain else bindable(value, dialect)

    return convert


# -- writing chunks ------------------------------------------------------------------------------


class _Loader(abc.ABC):
    """Transactions and bulk writes on one connection, in the driver's own terms."""

    begin_sql = "BEGIN"
    in_transaction = False

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan

    @abc.abstractmethod
    async def prepare(self) -> list[Converter]:
        """Check the statement and return one value converter per driver position."""

    @abc.abstractmethod
    async def _execute(self, sql: str) -> None: ...

    @abc.abstractmethod
    async def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Run the statement once per row; the number of rows touched."""

    async def begin(self) -> None:
        await self._execute(self.begin_sql)
        self.in_transaction = True

    async def commit(self) -> None:
        await self._execute("COMMIT")
        self.in_transaction = False

    async def rollback(self) -> None:
        self.in_transaction = False
        await self._execute("ROLLBACK")

    async def savepoint(self) -> None:
        await self._execute(f"SAVEPOINT {_SAVEPOINT}")

    async def release(self) -> None:
        await self._execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    async def rollback_to_savepoint(self) -> None:
        await self._execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")


class _PostgresLoader(_Loader):
    """asyncpg directly: one prepared statement, rows pipelined with ``executemany``."""

    def __init__(self, plan: _Plan, driver: Any, zone: ZoneInfo | None) -> None:
        super().__init__(plan)
        self.driver = driver
        self.zone = zone
        self.statement: Any = None
        self.counting = False

    async def prepare(self) -> list[Converter]:
        sql = self.plan.sql
        counting = self.plan.countable
        if counting:
            try:  # RETURNING 1 gives one row per row touched: an exact count
                self.statement = await self.driver.prepare(sql + "\nRETURNING 1")
            except Exception:
                counting = False
        if not counting:
            self.statement = await self.driver.prepare(sql)
        # asyncpg prepares without a Sync: until the next message, the server stays in an
        # implicit transaction holding locks on the table (a DROP TABLE would wait forever).
        await self.driver.execute("SELECT 1")
        self.counting = counting and hasattr(self.statement, "fetchmany")
        types = list(self.statement.get_parameters())
        if len(types) != len(self.plan.names):
            raise _Failed(
                f"the statement has {len(types)} parameter(s) for {len(self.plan.names)} value(s)"
            )
        return [_postgres_converter(t.name, t.kind, self.zone) for t in types]

    async def _execute(self, sql: str) -> None:
        await self.driver.execute(sql)

    async def write(self, rows: list[tuple[Any, ...]]) -> int:
        if self.counting:
            return len(await self.statement.fetchmany(rows))
        await self.statement.executemany(rows)
        return len(rows)


class _SqlAlchemyLoader(_Loader):
    """MySQL / MariaDB (aiomysql rewrites an ``INSERT ... VALUES`` batch as one multi-row
    statement) and SQLite: ``executemany`` through SQLAlchemy's driver-level API."""

    def __init__(self, plan: _Plan, conn: AsyncConnection, dialect: Dialect) -> None:
        super().__init__(plan)
        self.conn = conn
        self.dialect = dialect
        if dialect == "mysql":
            self.begin_sql = "START TRANSACTION"

    async def prepare(self) -> list[Converter]:
        return [_plain(self.dialect)] * len(self.plan.names)

    async def _execute(self, sql: str) -> None:
        await self.conn.exec_driver_sql(sql)

    async def write(self, rows: list[tuple[Any, ...]]) -> int:
        result = await self.conn.exec_driver_sql(self.plan.sql, rows)
        count = result.rowcount
        return count if count >= 0 else len(rows)


# -- the task ------------------------------------------------------------------------------------


def quote_name(name: str, dialect: Dialect, *, exact: bool = False) -> str:
    """An identifier for SQL: plain names as written (unless ``exact``), others quoted.

    Example::

        >>> quote_name("public.orders", "postgresql"), quote_name("Order Lines", "mysql")
        ('public.orders', '`Order Lines`')
    """
    quote = "`" if dialect == "mysql" else '"'
    parts = [name] if exact else _NAME_PART.findall(name)
    if not parts or (not exact and ".".join(parts) != name):
        raise UserError(f"invalid name {name!r}", field="table")
    out = []
    for part in parts:
        quoted = part[0] in '"`' and part[-1] == part[0] and len(part) > 1
        if not exact and (_PLAIN_NAME.fullmatch(part) or quoted):
            out.append(part)
        else:
            out.append(quote + part.replace(quote, quote * 2) + quote)
    return ".".join(out)


class Batch(_Connected):
    """Insert the rows of a JSON-lines or CSV file from internal storage, chunk by chunk.

    The file is streamed: only one chunk of rows is held in memory, whatever its size. Each chunk
    is sent in one round trip where the driver allows it (pipelined on PostgreSQL, one multi-row
    ``INSERT`` on MySQL / MariaDB) and committed on its own, as Kestra does; with
    ``atomic: true`` the whole file is loaded in one transaction instead. A row that cannot be
    read or inserted fails the task with its line number.
    """

    type_name: ClassVar[str] = "plait.db.Batch"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Batch")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Copy a table between databases: STORE it, then bulk-insert the file",
            full=True,
            code=(
                "id: copy_orders\n"
                "namespace: company.team\n"
                "tasks:\n"
                "  - id: export\n"
                "    type: plait.db.Query\n"
                "    url: jdbc:postgresql://dev.internal:5432/shop\n"
                "    username: reader\n"
                "    password: \"{{ secret('DEV_DB_PASSWORD') }}\"\n"
                "    sql: SELECT id, customer, total FROM orders\n"
                "    fetchType: STORE\n"
                "  - id: import\n"
                "    type: plait.db.Batch\n"
                '    from: "{{ outputs.export.uri }}"\n'
                "    url: jdbc:postgresql://prod.internal:5432/shop\n"
                "    username: loader\n"
                "    password: \"{{ secret('PROD_DB_PASSWORD') }}\"\n"
                "    sql: INSERT INTO orders (id, customer, total) VALUES (?, ?, ?)"
            ),
        ),
        Example(
            title="Load a CSV file into the columns of a table, all or nothing",
            code=(
                "id: load_products\n"
                "type: plait.db.Batch\n"
                'from: "{{ outputs.download.uri }}"\n'
                "url: jdbc:mariadb://mariadb.internal:3306/shop\n"
                "username: loader\n"
                "password: \"{{ secret('SHOP_DB_PASSWORD') }}\"\n"
                "table: products\n"
                "columns: [sku, name, price]\n"
                "atomic: true"
            ),
        ),
        Example(
            title="Upsert by named placeholders (each row is a JSON object)",
            code=(
                "id: upsert_customers\n"
                "type: plait.db.Batch\n"
                'from: "{{ outputs.extract.uri }}"\n'
                "url: jdbc:postgresql://db.internal:5432/crm\n"
                "sql: |\n"
                "  INSERT INTO customers (id, email) VALUES (:id, :email)\n"
                "  ON CONFLICT (id) DO UPDATE SET email = excluded.email\n"
                "chunk: 5000"
            ),
        ),
    )

    from_: str = Field(alias="from")
    """Internal-storage URI of the file of rows (``{{ outputs.query.uri }}`` of a ``Query``
    with ``fetchType: STORE``): JSON lines, one object (or array) per line, or CSV."""
    sql: str | None = None
    """The statement run for each row, usually an ``INSERT``. JDBC-style ``?`` placeholders
    take a row's values in order (an object's in key order, or in ``columns`` order when set);
    ``:name`` placeholders take the object's value of that key (``null`` when missing). Values
    are bound, never spliced into the SQL."""
    table: str | None = None
    """Instead of ``sql``: the table to insert into (``schema.table`` allowed). The columns are
    ``columns``, or else all the table's columns; each row's values are taken by column name
    (a JSON array or a CSV file without header gives them in order)."""
    columns: list[str] | None = None
    """The columns to insert with ``table``; with ``sql`` and ``?`` placeholders, the keys of
    each object to bind, in order."""
    chunk: int = Field(default=1000, ge=1)
    """Rows sent and committed together."""
    atomic: bool = False
    """Load the whole file in one transaction: a failure anywhere leaves the database as it was.
    By default (as Kestra) each chunk commits on its own, so the chunks before a failure stay."""
    format: FileFormat | None = None
    """``JSONL`` or ``CSV``; by default from the file's name (``.csv`` and ``.tsv`` are CSV,
    anything else JSON lines)."""
    header: bool = True
    """CSV: the first line names the columns (rows are then maps, like JSON objects)."""
    field_separator: str | None = None
    """CSV: the field separator; ``,`` by default (a tab for ``.tsv`` files)."""
    time_zone_id: str | None = None
    """IANA time zone in which date-times without an offset are taken when bound to a
    PostgreSQL ``TIMESTAMPTZ`` column (default: UTC)."""

    @field_validator("format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            return {"JSON": "JSONL", "NDJSON": "JSONL"}.get(value, value)
        return value

    @field_validator("field_separator")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("must be a single character")
        return value

    @field_validator("time_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}'") from None
        return value

    # -- plan --------------------------------------------------------------------------------

    def _statement_plan(self, dialect: Dialect) -> _Plan:
        assert self.sql is not None
        statements = parse(self.sql, dialect, positional=True)
        if len(statements) != 1:
            raise UserError(
                f"must be one statement (it has {len(statements)})"
                if statements
                else "has no SQL statement",
                field="sql",
            )
        [statement] = statements
        if not statement.placeholders:
            raise UserError("has no placeholder: use ? or :name for the row's values", field="sql")
        kinds = {p.name.startswith("?") for p in statement.placeholders}
        if len(kinds) > 1:
            if dialect != "postgresql":
                raise UserError("mixes ? and :name placeholders; use one style", field="sql")
            # With :name placeholders a PostgreSQL ? is the JSONB operator, left as it is.
            [statement] = parse(self.sql, dialect)
        positional = statement.positional
        if (
            positional
            and self.columns is not None
            and len(self.columns) != len(statement.placeholders)
        ):
            raise UserError(
                f"names {len(self.columns)} column(s) for {len(statement.placeholders)} "
                "? placeholder(s)",
                field="columns",
            )
        text, names = driver_sql(statement, dialect)
        countable = statement.keyword in _COUNTABLE and not statement.returning
        return _Plan(text, names, positional, countable)

    async def _table_plan(self, conn: AsyncConnection, target: Target) -> _Plan:
        assert self.table is not None
        dialect = target.dialect
        table = quote_name(self.table, dialect)
        if self.columns:
            names = list(self.columns)
            quoted = [
                quote_name(c, dialect, exact=not _PLAIN_NAME.fullmatch(c)) for c in self.columns
            ]
        else:
            try:
                result = await conn.exec_driver_sql(f"SELECT * FROM {table} WHERE 1 = 0")
            except Exception as error:
                raise TaskFailure(
                    f"cannot read the columns of {self.table}: {describe(error, target)}"
                ) from None
            names = list(map(str, result.keys()))
            result.close()
            quoted = [quote_name(c, dialect, exact=True) for c in names]
        if not names:
            raise UserError("no column to insert", field="columns")
        markers = (
            [f"${i}" for i in range(1, len(names) + 1)]
            if dialect == "postgresql"
            else ["%s" if dialect == "mysql" else "?"] * len(names)
        )
        sql = f"INSERT INTO {table} ({', '.join(quoted)}) VALUES ({', '.join(markers)})"
        return _Plan(sql, tuple(names), False, True)

    def _rows(self, ctx: RunContext) -> AsyncGenerator[Block, None]:
        kind = self.format or format_of(self.from_)
        chunks = ctx.storage.open(self.from_)
        if kind is FileFormat.CSV:
            default = "\t" if self.from_.lower().endswith(".tsv") else ","
            return csv_rows(chunks, header=self.header, delimiter=self.field_separator or default)
        return json_rows(chunks)

    # -- run ---------------------------------------------------------------------------------

    async def run(self, ctx: RunContext) -> BatchOutput:
        target = self._target(ctx)
        if self.sql is None and self.table is None:
            raise UserError("set sql (a statement with placeholders) or table", field="sql")
        if self.sql is not None and self.table is not None:
            ctx.log.warning("table is ignored: sql is set")
        if not self.from_.strip():
            raise UserError("is empty; expected an internal-storage URI", field="from")
        plan = self._statement_plan(target.dialect) if self.sql is not None else None
        zone = ZoneInfo(self.time_zone_id) if self.time_zone_id else None
        async with (
            self._database(ctx, target) as db,
            self._connect(db, autocommit=True) as conn,
        ):
            if plan is None:
                plan = await self._table_plan(conn, db.target)
            ctx.log.debug("batch statement: %s", plan.sql)
            loader = await self._loader(conn, db, plan, zone)
            try:
                converters = await loader.prepare()
            except _Failed as failure:
                raise TaskFailure(failure.message) from None
            except Exception as error:
                raise TaskFailure(
                    f"cannot prepare the statement: {describe(error, db.target)}"
                ) from None
            binder = _Binder(plan, self.columns if plan.positional else None, converters)
            progress = _Progress()
            try:
                await self._load(ctx, db, loader, binder, progress)
            except Exception:  # (a cancelled task's connection is dropped by _connect)
                await _settle(loader, conn)
                raise
        output = BatchOutput(row_count=progress.rows, updated_count=progress.updated)
        output.database_uri = await self._upload(ctx, db)
        ctx.metric("records", progress.rows)
        ctx.metric("updated", progress.updated)
        ctx.log.info(
            "loaded %d row(s) in %d chunk(s); %d row(s) updated",
            progress.rows,
            progress.chunks,
            progress.updated,
        )
        return output

    async def _loader(
        self, conn: AsyncConnection, db: _Database, plan: _Plan, zone: ZoneInfo | None
    ) -> _Loader:
        if db.target.dialect == "postgresql":
            raw = await conn.get_raw_connection()
            return _PostgresLoader(plan, raw.driver_connection, zone)
        return _SqlAlchemyLoader(plan, conn, db.target.dialect)

    async def _load(
        self,
        ctx: RunContext,
        db: _Database,
        loader: _Loader,
        binder: _Binder,
        progress: _Progress,
    ) -> None:
        pending: list[tuple[int, tuple[Any, ...]]] = []
        try:
            if self.atomic:
                await loader.begin()
            async with contextlib.aclosing(self._rows(ctx)) as blocks:
                async for block in blocks:
                    for line, row in block:
                        pending.append((line, binder(line, row)))
                        if len(pending) >= self.chunk:
                            await self._flush(ctx, db, loader, pending, progress)
                            pending = []
            if pending:
                await self._flush(ctx, db, loader, pending, progress)
            if self.atomic:
                await loader.commit()
                progress.committed = progress.rows
        except Exception as error:
            raise self._failure(error, db, progress) from None

    def _failure(self, error: Exception, db: _Database, progress: _Progress) -> Exception:
        if isinstance(error, RowError):
            return TaskFailure(f"{error}{self._kept(progress)}")
        if isinstance(error, _Failed):
            return TaskFailure(f"{error.message}{self._kept(progress)}")
        if isinstance(error, TaskFailure | UserError):
            return error
        return TaskFailure(f"{describe(error, db.target)}{self._kept(progress)}")

    def _kept(self, progress: _Progress) -> str:
        if progress.committed:
            return (
                f"; the {progress.committed} row(s) of the chunks before it stay committed "
                "(atomic: true loads all or nothing)"
            )
        return "; nothing was committed"

    async def _flush(
        self,
        ctx: RunContext,
        db: _Database,
        loader: _Loader,
        rows: list[tuple[int, tuple[Any, ...]]],
        progress: _Progress,
    ) -> None:
        values = [args for _, args in rows]
        if self.atomic:
            await loader.savepoint()
        else:
            await loader.begin()
        try:
            updated = await loader.write(values)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._undo(loader)
            raise _Failed(await self._diagnose(loader, db, rows, error)) from None
        if self.atomic:
            await loader.release()
        else:
            await loader.commit()
            progress.committed += len(rows)
        progress.rows += len(rows)
        progress.updated += updated
        progress.chunks += 1
        ctx.log.debug("chunk %d: %d row(s), %d updated", progress.chunks, len(rows), updated)

    async def _undo(self, loader: _Loader) -> None:
        if self.atomic:
            await loader.rollback_to_savepoint()
        else:
            await loader.rollback()

    async def _diagnose(
        self,
        loader: _Loader,
        db: _Database,
        rows: list[tuple[int, tuple[Any, ...]]],
        error: BaseException,
    ) -> str:
        """Find the row of a failed chunk that fails on its own (rolled back afterwards)."""
        if self.atomic:
            await loader.savepoint()
        else:
            await loader.begin()
        try:
            for line, args in rows:
                try:
                    await loader.write([args])
                except asyncio.CancelledError:
                    raise
                except Exception as row_error:
                    return f"line {line}: {describe(row_error, db.target)}"
        finally:
            await self._undo(loader)
        first, last = rows[0][0], rows[-1][0]
        return f"lines {first} to {last}: {describe(error, db.target)}"


@dataclass
class _Progress:
    rows: int = 0
    updated: int = 0
    chunks: int = 0
    committed: int = 0


async def _settle(loader: _Loader, conn: AsyncConnection) -> None:
    """Leave no transaction open on a connection going back to the pool."""
    if not loader.in_transaction:
        return
    try:
        await loader.rollback()
    except asyncio.CancelledError:
        raise
    except Exception:  # broken: drop the connection rather than pool it
        with contextlib.suppress(Exception):
            await conn.invalidate()
