"""The ``plait.db.Query`` and ``plait.db.Queries`` task types."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait_sdk import Example, Output, RunContext, Task, TaskFailure, UserError
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from plait_db._errors import describe
from plait_db._execute import Executor, FetchType, StatementResult
from plait_db._sql import Statement, missing_names, parse
from plait_db._urls import Target, resolve
from plait_db._values import ValueConverter

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio (and the ORM it pulls in) loads on first query
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_KESTRA = "io.kestra.plugin.jdbc"
_DATABASES = ("postgresql", "mysql", "mariadb", "sqlite")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: Seconds allowed to ask MySQL / MariaDB to stop the query of a killed task.
KILL_TIMEOUT = 5
#: Seconds given to aiosqlite's worker thread to wind down after a failed connect.
SQLITE_SETTLE = 0.05


# -- outputs ------------------------------------------------------------------------------------


class QueryOutput(Output):
    """The result of one statement."""

    row: dict[str, Any] | None = None
    """The first row (``fetchType: FETCH_ONE``); ``null`` when the query returned no row."""
    rows: list[dict[str, Any]] | None = None
    """Every row (``fetchType: FETCH``), each a map of column name to value."""
    uri: str | None = None
    """Internal-storage URI of the JSON-lines file of every row (``fetchType: STORE``)."""
    size: int | None = None
    """Number of rows fetched or stored (FETCH_ONE, FETCH and STORE)."""
    affected_rows: int | None = None
    """Rows inserted, updated or deleted by a statement that returns no rows (as the driver
    counts them: MySQL counts rows matched by an UPDATE)."""
    database_uri: str | None = None
    """Internal-storage URI of the SQLite database file (``outputDbFile: true``)."""

    _row_fetched: bool = PrivateAttr(default=False)

    def dump(self) -> dict[str, Any]:
        data = super().dump()
        if self._row_fetched:
            data.setdefault("row", None)  # as Kestra: `row` is present (null) when nothing came
        return data


class StatementOutput(Output):
    """Summary of one statement run by ``plait.db.Queries``."""

    returns_rows: bool
    """Whether the statement returned rows (a result set)."""
    size: int | None = None
    """Number of rows fetched or stored from it."""
    affected_rows: int | None = None
    """Rows it inserted, updated or deleted (statements that return no rows)."""


class QueriesOutput(Output):
    """The results of several statements."""

    outputs: list[QueryOutput] = Field(default_factory=list)
    """One entry per statement that returned rows, in order (as Kestra): ``row``, ``rows``,
    ``uri`` and ``size`` as for ``plait.db.Query``."""
    statements: list[StatementOutput] = Field(default_factory=list)
    """One entry per statement run, in order: ``returnsRows``, ``size`` and ``affectedRows``."""
    affected_rows: int = 0
    """Total rows inserted, updated or deleted by all the statements."""
    database_uri: str | None = None
    """Internal-storage URI of the SQLite database file (``outputDbFile: true``)."""

    def dump(self) -> dict[str, Any]:
        data = super().dump()
        data["outputs"] = [output.dump() for output in self.outputs]
        return data


# -- shared properties and plumbing -------------------------------------------------------------


def _aliases(name: str) -> tuple[str, ...]:
    return tuple(f"{_KESTRA}.{database}.{name}" for database in _DATABASES)


@dataclass
class _Database:
    engine: AsyncEngine
    target: Target
    file: Path | None = None
    """The SQLite file in the working directory (``sqliteFile`` / ``outputDbFile``)."""


class _Connected(Task):
    """Connection properties shared by every task of the plugin."""

    url: str
    """Database URL. Kestra's JDBC forms: ``jdbc:postgresql://host:5432/db``,
    ``jdbc:mysql://host:3306/db``, ``jdbc:mariadb://host:3306/db``, ``jdbc:sqlite:path.db``
    (``jdbc:sqlite::memory:`` for a private in-memory database); or a SQLAlchemy URL
    (``postgresql://``, ``mysql://``, ``mariadb://``, ``sqlite:///path.db``). Connections use the
    async drivers asyncpg, aiomysql and aiosqlite. JDBC parameters ``user``, ``password``,
    ``sslmode``/``ssl``, ``ApplicationName``, ``currentSchema`` (PostgreSQL) and
    ``characterEncoding`` (MySQL) are understood; others are ignored with a warning."""
    username: str | None = None
    """User name; takes precedence over one in the URL."""
    password: SecretStr | None = None
    """Password, usually ``"{{ secret('DB_PASSWORD') }}"``; takes precedence over one in the URL.
    It is masked in logs and outputs and never appears in error messages."""
    sqlite_file: str | None = None
    """SQLite only: internal-storage URI of a database file to use (copied to the working
    directory under the URL's file name)."""
    output_db_file: bool = False
    """SQLite only: upload the database file afterwards and output it as ``databaseUri``."""

    def _target(self, ctx: RunContext) -> Target:
        password = self.password.get_secret_value() if self.password is not None else None
        if password:
            ctx.mask(password)
        target = resolve(self.url, self.username, password)
        if target.password and target.password != password:
            ctx.mask(target.password)  # a password written inside the URL
        if target.ignored:
            ctx.log.warning(
                "ignoring JDBC URL parameter(s) with no equivalent here: %s",
                ", ".join(target.ignored),
            )
        if target.dialect != "sqlite":
            for name, used in (
                ("sqliteFile", self.sqlite_file),
                ("outputDbFile", self.output_db_file),
            ):
                if used:
                    raise UserError("only applies to SQLite URLs", field=name)
        return target

    @asynccontextmanager
    async def _database(self, ctx: RunContext, target: Target) -> AsyncIterator[_Database]:
        from plait_db._engines import ENGINES

        if target.dialect == "sqlite" and (self.sqlite_file or self.output_db_file):
            name = "database.sqlite" if target.is_memory else Path(str(target.url.database)).name
            path = ctx.working_dir / name
            if self.sqlite_file:
                await ctx.storage.download(self.sqlite_file, path)
            local = target.with_database(str(path))
            async with ENGINES.private(local) as engine:
                yield _Database(engine, local, path)
        elif target.is_memory:
            async with ENGINES.private(target) as engine:
                yield _Database(engine, target)
        else:
            yield _Database(ENGINES.get(target), target)

    @asynccontextmanager
    async def _connect(self, db: _Database, *, autocommit: bool) -> AsyncIterator[AsyncConnection]:
        _check_sqlite_directory(db.target)
        conn: AsyncConnection | None = None
        try:
            conn = await db.engine.connect()
            if autocommit:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            server_id = await _mysql_thread_id(conn) if db.target.dialect == "mysql" else None
        except BaseException as error:
            if conn is not None:
                await conn.close()
            if not isinstance(error, Exception):  # cancellation and the like
                raise
            if db.target.dialect == "sqlite":
                # aiosqlite stops its worker thread after a failed connect without waiting for
                # it; let it finish while the event loop still runs (else the thread fails later
                # with "Event loop is closed").
                await asyncio.sleep(SQLITE_SETTLE)
            raise TaskFailure(describe(error, db.target, connecting=True)) from None
        try:
            yield conn
        except asyncio.CancelledError:
            # Killed or timed out mid-statement. asyncpg cancels the running query itself; for
            # MySQL / MariaDB ask the server to stop it, then drop the connection.
            if server_id is not None:
                await asyncio.shield(_kill_mysql_query(db.engine, server_id))
            await _abandon(conn)
            raise
        finally:
            await conn.close()

    async def _upload(self, ctx: RunContext, db: _Database) -> str | None:
        if not (self.output_db_file and db.file is not None):
            return None
        if not db.file.exists():
            db.file.touch()
        return await ctx.storage.put(db.file.name, db.file)


class _SqlTask(_Connected):
    """Connection and fetch properties shared by Query and Queries."""

    fetch_type: FetchType = FetchType.NONE
    """What to do with returned rows: ``NONE`` (discard), ``FETCH_ONE`` (first row as ``row``),
    ``FETCH`` (all rows as ``rows``, held in memory) or ``STORE`` (streamed with a server-side
    cursor to a JSON-lines file in internal storage, as ``uri``; memory stays flat)."""
    fetch_size: int = Field(default=10_000, ge=1)
    """Rows fetched per round trip when streaming (``STORE``)."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Values bound to ``:name`` placeholders in the SQL. Values are sent to the database
    separately from the SQL, never spliced into it. A list bound with ``IN :ids`` (or
    ``IN (:ids)``) expands to one value per item; elsewhere a list is a PostgreSQL array (JSON
    text for MySQL and SQLite) and a map is JSON text. On PostgreSQL, text values are converted
    to the parameter's type (``"2024-05-01"`` for a DATE, ``"42"`` for an INTEGER)."""
    time_zone_id: str | None = None
    """IANA time zone (``Europe/Paris``) to express zone-aware timestamps in; naive ones are
    left as they are. Default: as the database returns them."""
    fetch: bool = False
    """Deprecated (Kestra): use ``fetchType: FETCH``."""
    fetch_one: bool = False
    """Deprecated (Kestra): use ``fetchType: FETCH_ONE``."""
    store: bool = False
    """Deprecated (Kestra): use ``fetchType: STORE``."""

    @field_validator("fetch_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("time_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}'") from None
        return value

    # -- helpers ---------------------------------------------------------------------------------

    def _effective_fetch_type(self) -> FetchType:
        if self.fetch:
            return FetchType.FETCH
        if self.fetch_one:
            return FetchType.FETCH_ONE
        if self.store:
            return FetchType.STORE
        return self.fetch_type

    def _parse(self, sql: str | Sequence[str], target: Target, field: str) -> list[Statement]:
        if isinstance(sql, str):
            statements = parse(sql, target.dialect)
        else:  # a list: one statement per item, never split
            statements = [s for item in sql for s in parse(item, target.dialect, split=False)]
        if not statements:
            raise UserError("no SQL statement to run", field=field)
        return statements

    def _check_parameters(self, statements: Sequence[Statement]) -> None:
        missing = missing_names(statements, self.parameters)
        if missing:
            names = ", ".join(f":{name}" for name in missing)
            raise UserError(
                f"the SQL uses {names} but no value is given for it", field="parameters"
            )

    def _executor(self, ctx: RunContext, target: Target) -> Executor:
        return Executor(
            ctx=ctx,
            dialect=target.dialect,
            fetch_type=self._effective_fetch_type(),
            fetch_size=self.fetch_size,
            parameters=self.parameters,
            converter=ValueConverter(self.time_zone_id),
        )

    async def _statement(
        self,
        executor: Executor,
        conn: AsyncConnection,
        db: _Database,
        statement: Statement,
        *,
        file_name: str,
        label: str,
    ) -> StatementResult:
        try:
            result = await executor.run(conn, statement, file_name)
        except (TaskFailure, UserError, asyncio.CancelledError):
            raise
        except Exception as error:
            raise TaskFailure(f"{label} failed: {describe(error, db.target)}") from None
        _log_result(executor.ctx, result, label)
        return result


def _check_sqlite_directory(target: Target) -> None:
    """Refuse a SQLite file whose directory does not exist (a clear message, no driver call)."""
    database = target.url.database
    if target.dialect != "sqlite" or target.is_memory or not database:
        return
    if database.startswith("file:"):
        return
    directory = Path(database).parent
    if not directory.is_dir():
        raise TaskFailure(
            f"cannot open SQLite database {database}: directory {directory} does not exist"
        )


async def _mysql_thread_id(conn: AsyncConnection) -> int | None:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    thread_id = getattr(driver, "thread_id", None)
    return int(thread_id()) if callable(thread_id) else None


async def _kill_mysql_query(engine: AsyncEngine, thread_id: int) -> None:
    try:
        async with asyncio.timeout(KILL_TIMEOUT), engine.connect() as other:
            await other.exec_driver_sql(f"KILL QUERY {int(thread_id)}")
    except Exception:  # best effort: the server may be gone, or the query already over
        pass


async def _abandon(conn: AsyncConnection) -> None:
    """Drop a connection interrupted mid-statement instead of returning it to the pool."""
    with contextlib.suppress(Exception):  # already broken: nothing more to release
        await asyncio.shield(conn.invalidate())


def _log_result(ctx: RunContext, result: StatementResult, label: str) -> None:
    if not result.returns_rows:
        if result.affected_rows is not None:
            ctx.log.info("%s: %d row(s) affected", label, result.affected_rows)
        return
    if result.uri is not None:
        ctx.log.info("%s: stored %d row(s) in %s", label, result.size or 0, result.uri)
    elif result.fetch_type in (FetchType.FETCH, FetchType.FETCH_ONE):
        ctx.log.info("%s: fetched %d row(s)", label, result.size or 0)


def _output(result: StatementResult) -> QueryOutput:
    output = QueryOutput(
        row=result.row,
        rows=result.rows,
        uri=result.uri,
        size=result.size,
        affected_rows=result.affected_rows,
    )
    output._row_fetched = result.returns_rows and result.fetch_type is FetchType.FETCH_ONE
    return output


def _file_name(ctx: RunContext, suffix: str = "") -> str:
    base = _SAFE_NAME.sub("_", ctx.task_id).strip("._") or "rows"
    return f"{base}{suffix}.jsonl"


def _metric(ctx: RunContext, fetch_type: FetchType, size: int) -> None:
    fetched = fetch_type in (FetchType.FETCH, FetchType.FETCH_ONE)
    tags = {"fetch": str(fetched).lower(), "store": str(fetch_type is FetchType.STORE).lower()}
    ctx.metric("fetch.size", size, tags=tags)


# -- tasks --------------------------------------------------------------------------------------


class Query(_SqlTask):
    """Run one SQL statement on PostgreSQL, MySQL / MariaDB or SQLite and fetch its rows.

    The statement runs in autocommit mode, or in a transaction when rows are streamed (``STORE``,
    ``FETCH_ONE``) or ``afterSQL`` is set: then both statements commit together. Connections are
    pooled per URL and credentials for the whole process.
    """

    type_name: ClassVar[str] = "plait.db.Query"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Query")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Fetch rows from PostgreSQL with bound parameters and a secret password",
            code=(
                "id: recent_orders\n"
                "type: plait.db.Query\n"
                "url: jdbc:postgresql://db.internal:5432/shop\n"
                "username: reporting\n"
                "password: \"{{ secret('SHOP_DB_PASSWORD') }}\"\n"
                "sql: |\n"
                "  SELECT id, customer, total, created_at\n"
                "  FROM orders\n"
                "  WHERE created_at >= :since AND status IN :statuses\n"
                "parameters:\n"
                "  since: \"{{ execution.startDate | dateAdd(-1, 'DAYS') }}\"\n"
                "  statuses: [paid, shipped]\n"
                "fetchType: FETCH"
            ),
        ),
        Example(
            title="Stream a large table to internal storage (JSON lines)",
            code=(
                "id: export_events\n"
                "type: plait.db.Query\n"
                "url: jdbc:mysql://mysql.internal:3306/analytics\n"
                "username: exporter\n"
                "password: \"{{ secret('ANALYTICS_PASSWORD') }}\"\n"
                "sql: SELECT * FROM events WHERE day = :day\n"
                'parameters: {day: "{{ inputs.day }}"}\n'
                "fetchType: STORE"
            ),
        ),
        Example(
            title="Count rows in a local SQLite file",
            full=True,
            code=(
                "id: sqlite_count\n"
                "namespace: company.team\n"
                "tasks:\n"
                "  - id: count\n"
                "    type: plait.db.Query\n"
                "    url: jdbc:sqlite:inventory.db\n"
                "    sql: SELECT count(*) AS items FROM products\n"
                "    fetchType: FETCH_ONE\n"
                "  - id: log\n"
                "    type: plait.core.Log\n"
                '    message: "{{ outputs.count.row.items }} products"'
            ),
        ),
    )

    sql: str
    """The SQL statement (one; use ``plait.db.Queries`` for several). ``:name`` placeholders
    take their values from ``parameters``."""
    after_sql: str | None = Field(default=None, alias="afterSQL")
    """A statement run after ``sql`` in the same transaction (for example to mark fetched rows
    as processed); both commit together or not at all."""

    async def run(self, ctx: RunContext, gate: CommitGate | None = None) -> QueryOutput:
        """Run the statement (and ``afterSQL``). ``gate``, with ``afterSQL``, is awaited with
        the output before the transaction commits: False (or an exception) rolls it back."""
        target = self._target(ctx)
        statements = self._parse(self.sql, target, "sql")
        if len(statements) > 1:
            raise UserError(
                f"has {len(statements)} statements; plait.db.Query runs one "
                "(use plait.db.Queries for several)",
                field="sql",
            )
        after = self._parse(self.after_sql, target, "afterSQL") if self.after_sql else []
        if len(after) > 1:
            raise UserError("must be a single statement", field="afterSQL")
        self._check_parameters([*statements, *after])
        executor = self._executor(ctx, target)
        streamed = executor.fetch_type in (FetchType.FETCH_ONE, FetchType.STORE)
        transactional = bool(after) or (streamed and statements[0].returns_rows_surely)
        async with (
            self._database(ctx, target) as db,
            self._connect(db, autocommit=not transactional) as conn,
        ):
            if transactional:
                result = await self._transaction(executor, conn, db, statements[0], after, gate)
            else:
                result = await self._statement(
                    executor, conn, db, statements[0], file_name=_file_name(ctx), label="query"
                )
        output = _output(result)
        output.database_uri = await self._upload(ctx, db)
        _metric(ctx, executor.fetch_type, result.size or 0)
        return output

    async def _transaction(
        self,
        executor: Executor,
        conn: AsyncConnection,
        db: _Database,
        statement: Statement,
        after: list[Statement],
        gate: CommitGate | None = None,
    ) -> StatementResult:
        try:
            async with conn.begin() as transaction:
                result = await self._statement(
                    executor, conn, db, statement, file_name=_file_name(executor.ctx), label="query"
                )
                for extra in after:
                    await self._statement(
                        executor,
                        conn,
                        db,
                        extra,
                        file_name=_file_name(executor.ctx, "-after"),
                        label="afterSQL",
                    )
                if gate is not None and after and not await gate(_output(result)):
                    await transaction.rollback()
        except (TaskFailure, UserError, asyncio.CancelledError):
            raise
        except Exception as error:
            raise TaskFailure(f"commit failed: {describe(error, db.target)}") from None
        return result


#: Decides, with a query's output in hand, whether its transaction commits (see Query.run).
CommitGate = Callable[["QueryOutput"], Awaitable[bool]]


class Queries(_SqlTask):
    """Run several SQL statements in order, in one transaction by default.

    ``sql`` is a script split on ``;`` (semicolons inside quotes, comments, PostgreSQL
    dollar-quoted bodies and ``CREATE ... BEGIN ... END`` blocks do not split it) or a list of
    statements. With ``transaction: true`` (the default) the statements commit together, and any
    failure rolls every one of them back. (MySQL and MariaDB commit implicitly on DDL such as
    ``CREATE TABLE``, which cannot be rolled back there.)
    """

    type_name: ClassVar[str] = "plait.db.Queries"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Queries")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Move stock between warehouses atomically",
            code=(
                "id: transfer\n"
                "type: plait.db.Queries\n"
                "url: jdbc:postgresql://db.internal:5432/shop\n"
                "username: app\n"
                "password: \"{{ secret('SHOP_DB_PASSWORD') }}\"\n"
                "parameters:\n"
                '  sku: "{{ inputs.sku }}"\n'
                '  qty: "{{ inputs.quantity }}"\n'
                "sql: |\n"
                "  UPDATE stock SET qty = qty - :qty WHERE sku = :sku AND warehouse = 'A';\n"
                "  UPDATE stock SET qty = qty + :qty WHERE sku = :sku AND warehouse = 'B';\n"
                "  SELECT warehouse, qty FROM stock WHERE sku = :sku ORDER BY warehouse;\n"
                "fetchType: FETCH"
            ),
        ),
        Example(
            title="Create and fill a SQLite database, then hand the file to later tasks",
            code=(
                "id: build_db\n"
                "type: plait.db.Queries\n"
                "url: jdbc:sqlite:report.db\n"
                "outputDbFile: true\n"
                "sql:\n"
                "  - CREATE TABLE totals (day TEXT, amount NUMERIC)\n"
                "  - INSERT INTO totals VALUES ('2024-05-01', 12.5), ('2024-05-02', 7)\n"
                "  - SELECT sum(amount) AS total FROM totals\n"
                "fetchType: FETCH_ONE"
            ),
        ),
    )

    sql: str | list[str]
    """The statements: a script separated by ``;``, or a list with one statement per item
    (use the list form for bodies the splitter cannot see, such as MySQL procedures written with
    ``DELIMITER``). ``:name`` placeholders take their values from ``parameters``."""
    transaction: bool = True
    """Run all statements in one transaction, rolled back entirely if one fails. When false,
    each statement commits on its own and the ones before a failure stay committed."""

    async def run(self, ctx: RunContext) -> QueriesOutput:
        target = self._target(ctx)
        statements = self._parse(self.sql, target, "sql")
        self._check_parameters(statements)
        executor = self._executor(ctx, target)
        results: list[StatementResult] = []
        async with self._database(ctx, target) as db, self._connect(db, autocommit=False) as conn:
            if self.transaction:
                await self._in_one_transaction(executor, conn, db, statements, results)
            else:
                await self._each_committed(executor, conn, db, statements, results)
        output = QueriesOutput(
            outputs=[_output(r) for r in results if r.returns_rows],
            statements=[
                StatementOutput(
                    returns_rows=r.returns_rows, size=r.size, affected_rows=r.affected_rows
                )
                for r in results
            ],
            affected_rows=sum(r.affected_rows or 0 for r in results if not r.returns_rows),
        )
        output.database_uri = await self._upload(ctx, db)
        _metric(ctx, executor.fetch_type, sum(r.size or 0 for r in results))
        return output

    def _label(self, index: int, count: int) -> str:
        return f"statement {index + 1} of {count}"

    async def _in_one_transaction(
        self,
        executor: Executor,
        conn: AsyncConnection,
        db: _Database,
        statements: list[Statement],
        results: list[StatementResult],
    ) -> None:
        count = len(statements)
        try:
            async with conn.begin():
                for index, statement in enumerate(statements):
                    results.append(
                        await self._statement(
                            executor,
                            conn,
                            db,
                            statement,
                            file_name=_file_name(executor.ctx, f"-{index + 1}"),
                            label=self._label(index, count),
                        )
                    )
        except TaskFailure as failure:
            executor.ctx.log.warning("rolled back the transaction of %d statement(s)", count)
            raise failure from None
        except (UserError, asyncio.CancelledError):
            raise
        except Exception as error:
            raise TaskFailure(f"commit failed: {describe(error, db.target)}") from None

    async def _each_committed(
        self,
        executor: Executor,
        conn: AsyncConnection,
        db: _Database,
        statements: list[Statement],
        results: list[StatementResult],
    ) -> None:
        count = len(statements)
        for index, statement in enumerate(statements):
            label = self._label(index, count)
            try:
                async with conn.begin():
                    results.append(
                        await self._statement(
                            executor,
                            conn,
                            db,
                            statement,
                            file_name=_file_name(executor.ctx, f"-{index + 1}"),
                            label=label,
                        )
                    )
            except (TaskFailure, UserError, asyncio.CancelledError):
                raise
            except Exception as error:
                raise TaskFailure(f"{label}: commit failed: {describe(error, db.target)}") from None
