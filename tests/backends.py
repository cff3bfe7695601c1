"""The database backends the repository tests run on: embedded SQLite and PostgreSQL.

PostgreSQL is the machine's server on 127.0.0.1:5432 (user postgres, database test); each test
gets its own schema, dropped afterwards. Without the server the PostgreSQL cases skip, except
in CI (``CI`` set: see ``ci_switch``), where they fail: CI must not pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ci_switch import service_missing

PG_DSN = os.environ.get("PLAIT_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


@dataclass
class Backend:
    name: str
    url: str
    _run: Any

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run raw SQL outside Plait (to read or tamper with what it stored)."""
        return list(self._run(sql, params))


def _sqlite(tmp_path: Path) -> Iterator[Backend]:
    import sqlite3

    path = tmp_path / "plait.db"

    def run(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

    yield Backend("sqlite", f"sqlite:///{path}", run)


def _postgresql() -> Iterator[Backend]:
    import psycopg

    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        service_missing(f"PostgreSQL is not reachable ({PG_DSN}): {error}")
    schema = f"plait_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')

    def run(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            cursor = conn.execute(sql.encode(), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    dsn = dict(part.split("=", 1) for part in PG_DSN.split())
    url = (
        f"postgresql+psycopg://{dsn.get('user', 'postgres')}@{dsn.get('host', '127.0.0.1')}:"
        f"{dsn.get('port', '5432')}/{dsn.get('dbname', 'test')}?options=-csearch_path%3D{schema}"
    )
    try:
        yield Backend("postgresql", url, run)
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
    else:
        yield from _postgresql()
