"""Running one statement on a connection: binding, fetching, storing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from plait_sdk import RunContext

from plait_db._sql import Dialect, Statement
from plait_db._values import (
    ValueConverter,
    bindable,
    bindable_for_in,
    coerce_postgres,
    mysql_json_columns,
)

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio loads on the first query, not at plugin discovery
    from sqlalchemy import CursorResult, TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncResult

RowBatches = AsyncIterator[Sequence[Sequence[Any]]]
_EXPANDED = re.compile(r"^(?P<name>.+)_(?P<index>\d+)$")
#: FETCH_ONE streams with this many rows per round trip (it needs only the first).
_FETCH_ONE_BATCH = 16


class FetchType(StrEnum):
    """What to do with the rows a statement returns."""

    NONE = "NONE"
    """Discard them (the statement still runs)."""
    FETCH_ONE = "FETCH_ONE"
    """Output the first row as ``row``."""
    FETCH = "FETCH"
    """Output every row as ``rows`` (they are held in memory: prefer STORE for big results)."""
    STORE = "STORE"
    """Stream every row to a JSON-lines file in internal storage, output as ``uri``."""


@dataclass
class StatementResult:
    """What one statement gave."""

    returns_rows: bool
    fetch_type: FetchType
    row: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None
    uri: str | None = None
    size: int | None = None
    affected_rows: int | None = None


@dataclass
class Executor:
    """Runs statements for one task run with its fetch settings and parameters."""

    ctx: RunContext
    dialect: Dialect
    fetch_type: FetchType
    fetch_size: int
    parameters: Mapping[str, Any]
    converter: ValueConverter

    async def run(
        self, conn: AsyncConnection, statement: Statement, file_name: str
    ) -> StatementResult:
        """Execute ``statement`` on ``conn`` and fetch its rows as ``fetch_type`` says."""
        clause = await self._clause(conn, statement)
        self.ctx.log.debug("executing: %s", statement.sql)
        streamed = self.fetch_type in (FetchType.FETCH_ONE, FetchType.STORE)
        if streamed and statement.returns_rows_surely:
            batch = _FETCH_ONE_BATCH if self.fetch_type is FetchType.FETCH_ONE else self.fetch_size
            if (
                self.dialect == "postgresql"
                and self.fetch_type is FetchType.STORE
                and await _postgres_transaction(conn)
            ):
                fetched = await self._store_postgres(conn, clause, file_name)
            else:
                async with conn.stream(clause, execution_options={"yield_per": batch}) as stream:
                    fetched = await self._streamed(stream, file_name)
            if self.dialect == "postgresql" and conn.in_transaction():
                # asyncpg keeps the cursor's portal open until the transaction ends, which would
                # block a later DROP/ALTER of the same table in this transaction.
                await conn.exec_driver_sql("CLOSE ALL")
            return fetched
        result = await conn.execute(clause)
        return await self._buffered(result, file_name)

    # -- binding -----------------------------------------------------------------------------

    def _values(self, statement: Statement) -> dict[str, Any]:
        listed = {p.name for p in statement.placeholders if p.in_list}
        values: dict[str, Any] = {}
        for name in statement.names:
            raw = self.parameters[name]
            convert = bindable_for_in if name in listed else bindable
            values[name] = convert(raw, self.dialect)
        return values

    async def _clause(self, conn: AsyncConnection, statement: Statement) -> TextClause:
        values = self._values(statement)
        if self.dialect == "postgresql" and values:
            values = await self._coerce_postgres(conn, statement, values)
        return statement.clause(values)

    async def _coerce_postgres(
        self, conn: AsyncConnection, statement: Statement, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Convert values to the parameter types PostgreSQL infers (asyncpg checks them strictly:
        ``'2024-05-01'`` for a DATE or ``'42'`` for an INTEGER would be refused)."""
        compiled = statement.clause(values).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        positions = list(compiled.positiontup or ())
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        prepared = await driver.prepare(compiled.string)
        types = list(prepared.get_parameters())
        if len(types) != len(positions):
            return values
        coerced = dict(values)
        lists = {k: list(v) for k, v in values.items() if isinstance(v, list | tuple)}
        for name, kind in zip(positions, types, strict=True):
            if name in coerced and name not in lists:
                coerced[name] = coerce_postgres(coerced[name], kind.name, kind.kind)
                continue
            match = _EXPANDED.match(name)
            source = match and lists.get(match["name"])
            if match and source is not None and 0 < int(match["index"]) <= len(source):
                index = int(match["index"]) - 1
                source[index] = coerce_postgres(source[index], kind.name, kind.kind)
            elif name in coerced:  # a list bound whole (an ARRAY parameter)
                coerced[name] = coerce_postgres(coerced[name], kind.name, kind.kind)
                lists.pop(name, None)
        coerced.update(lists)
        return coerced

    # -- fetching ----------------------------------------------------------------------------

    def _json_columns(self, description: Any) -> list[int]:
        return mysql_json_columns(description) if self.dialect == "mysql" else []

    async def _streamed(self, stream: AsyncResult[Any], file_name: str) -> StatementResult:
        real: Any = getattr(stream, "_real_result", None)  # SQLAlchemy keeps these on it
        if real is not None and not real.returns_rows:
            rowcount = real.rowcount
            return StatementResult(
                False, self.fetch_type, affected_rows=rowcount if rowcount >= 0 else None
            )
        cursor = getattr(real, "cursor", None)
        convert = self.converter.row_converter(
            list(stream.keys()), self._json_columns(getattr(cursor, "description", None))
        )
        if self.fetch_type is FetchType.FETCH_ONE:
            first = await stream.first()
            return self._one(convert, first)

        async def batches() -> RowBatches:
            # The size must be given: SQLAlchemy's AsyncResult.partitions() without one ignores
            # yield_per and returns the whole result as a single partition.
            async for part in stream.partitions(self.fetch_size):
                yield part

        return await self._store(batches(), convert, file_name)

    async def _store_postgres(
        self, conn: AsyncConnection, clause: TextClause, file_name: str
    ) -> StatementResult:
        """STORE on PostgreSQL with asyncpg's own cursor: the rows come as asyncpg records in
        batches of ``fetch_size``, without SQLAlchemy's per-row result machinery (STORE of
        millions of rows is about twice as fast)."""
        compiled = clause.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        values = [compiled.params[name] for name in compiled.positiontup or ()]
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        prepared = await driver.prepare(compiled.string)
        names = [attribute.name for attribute in prepared.get_attributes()]
        if not names:  # no result columns: a statement that returns no rows after all
            await prepared.fetch(*values)
            status = (prepared.get_statusmsg() or "").split()
            count = int(status[-1]) if status and status[-1].isdigit() else None
            return StatementResult(False, self.fetch_type, affected_rows=count)
        convert = self.converter.row_converter(names)
        cursor = await prepared.cursor(*values)
        size = self.fetch_size

        async def batches() -> RowBatches:
            while True:
                rows = await cursor.fetch(size)
                if not rows:
                    return
                yield rows

        return await self._store(batches(), convert, file_name)

    async def _buffered(self, result: CursorResult[Any], file_name: str) -> StatementResult:
        if not result.returns_rows:
            rowcount = result.rowcount
            return StatementResult(
                False, self.fetch_type, affected_rows=rowcount if rowcount >= 0 else None
            )
        cursor = getattr(result, "cursor", None)
        convert = self.converter.row_converter(
            list(result.keys()), self._json_columns(getattr(cursor, "description", None))
        )
        if self.fetch_type is FetchType.NONE:
            result.close()
            return StatementResult(True, self.fetch_type)
        if self.fetch_type is FetchType.FETCH_ONE:
            return self._one(convert, result.first())
        if self.fetch_type is FetchType.FETCH:
            rows = [convert(row) for row in result]
            return StatementResult(True, self.fetch_type, rows=rows, size=len(rows))

        async def batches() -> RowBatches:
            for part in result.partitions(self.fetch_size):
                yield part

        return await self._store(batches(), convert, file_name)

    def _one(
        self, convert: Callable[[Sequence[Any]], dict[str, Any]], first: Sequence[Any] | None
    ) -> StatementResult:
        row = None if first is None else convert(first)
        return StatementResult(True, self.fetch_type, row=row, size=0 if row is None else 1)

    async def _store(
        self,
        batches: RowBatches,
        convert: Callable[[Sequence[Any]], dict[str, Any]],
        file_name: str,
    ) -> StatementResult:
        count = [0]
        uri = await self.ctx.storage.put(file_name, _json_lines(batches, convert, count))
        return StatementResult(True, self.fetch_type, uri=uri, size=count[0])


async def _postgres_transaction(conn: AsyncConnection) -> bool:
    """Whether asyncpg is in a transaction (which its cursors need), after making SQLAlchemy
    start the one it opens lazily, on its first statement."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction() and conn.in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return bool(driver.is_in_transaction())


async def _json_lines(
    batches: RowBatches,
    convert: Callable[[Sequence[Any]], dict[str, Any]],
    count: list[int],
) -> AsyncIterator[bytes]:
    """Rows as JSON lines, one chunk per batch: only one batch is ever held in memory."""
    encode = _row_encoder()
    async for batch in batches:
        lines: Iterable[str] = (encode(convert(row)) for row in batch)
        chunk = "\n".join(lines)
        if chunk:
            count[0] += len(batch)
            yield (chunk + "\n").encode("utf-8")


def _row_encoder() -> Callable[[dict[str, Any]], str]:
    """Compact JSON text of one converted row (no NaN: converted rows hold none).

    ``JSONEncoder.encode`` builds a new C encoder at every call; with the C accelerator, one
    encoder is made here and reused for every row (twice as fast for millions of rows).
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    # Rows are plain trees built by ValueConverter: no cycles to watch for (markers=None).
    iterencode = make(
        None,
        encoder.default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )
    join = "".join

    def encode(row: dict[str, Any]) -> str:
        return join(iterencode(row, 0))

    return encode
