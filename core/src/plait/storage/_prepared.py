"""Statements compiled once and run on the driver's cursor: the engine's hot path.

Every durable step of every execution is one repository save: an upsert of the execution, an
upsert of the task runs that changed, the new log lines and metrics, and a commit. Through
``Connection.execute`` SQLAlchemy spends about 20 µs of Python per statement (compiled-cache
lookup, parameter processing, result setup): 60 µs of the ~300 µs a non-pure task cost in
all, against 20 µs for the same work on the DBAPI cursor. So the save statements are compiled
by SQLAlchemy once, for the dialect in use (the SQL text and the type conversions stay
SQLAlchemy's), and executed directly on the driver connection, in a transaction of their own
(:func:`group`), which holds the steps of several executions at once (``SqlRepository.save``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class Prepared:
    """One statement compiled for one set of parameter keys, with its bind conversions."""

    def __init__(
        self, statement: ClauseElement, table: Table, keys: Sequence[str], dialect: Dialect
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        if set(compiled.params) != set(keys):
            raise ValueError(f"bind names {sorted(compiled.params)} differ from {sorted(keys)}")
        self.sql = compiled.string
        #: Positional paramstyles (SQLite's qmark) take tuples in this order; named ones dicts.
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )
        self.convert: dict[str, Callable[[Any], Any]] = {}
        for key in keys:
            processor = table.c[key].type.bind_processor(dialect)
            if processor is not None:
                self.convert[key] = processor

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        convert = self.convert
        out: list[Any] = []
        for row in rows:
            values = {k: (convert[k](v) if k in convert else v) for k, v in row.items()}
            out.append(tuple(values[k] for k in self.order) if self.order is not None else values)
        return out


class Group:
    """One transaction on ``conn``'s driver connection, for :func:`group`: its cursor runs
    single rows (:meth:`one`, which says whether a row changed) and batches (:meth:`many`)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def one(self, prepared: Prepared, row: Mapping[str, Any]) -> bool:
        self.cursor.execute(prepared.sql, prepared.parameters([row])[0])
        return bool(self.cursor.rowcount == 1)

    def many(self, prepared: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.cursor.executemany(prepared.sql, prepared.parameters(rows))


@contextlib.contextmanager
def group(conn: Connection) -> Iterator[Group]:
    """A transaction of its own on ``conn``'s driver connection, committed when the block
    ends, or rolled back and the error re-raised.

    ``conn`` must have no transaction open (each repository call ends with a commit or a
    rollback).
    """
    if conn.in_transaction():
        raise RuntimeError("a SQLAlchemy transaction is open on the repository connection")
    driver: Any = conn.connection.driver_connection
    sqlite = conn.dialect.name == "sqlite"
    cursor = driver.cursor()
    try:
        if sqlite:
            # The driver runs in autocommit mode (SQLAlchemy's listener issues BEGIN IMMEDIATE
            # for its own transactions): take the write lock up front the same way.
            cursor.execute("BEGIN IMMEDIATE")
        yield Group(cursor)
        if sqlite:
            cursor.execute("COMMIT")
        else:
            driver.commit()
    except BaseException:
        _rollback(driver, cursor, sqlite)
        raise
    finally:
        cursor.close()


def _rollback(driver: Any, cursor: Any, sqlite: bool) -> None:
    # A failing rollback (a broken disk) must not hide the error that made us roll back.
    with contextlib.suppress(Exception):
        if sqlite:
            if driver.in_transaction:
                cursor.execute("ROLLBACK")
        else:
            driver.rollback()
