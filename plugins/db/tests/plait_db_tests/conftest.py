"""Fixtures: real PostgreSQL, MariaDB and SQLite databases, a RunContext (plait_sdk.testing), and
the real engine.

Services: PostgreSQL on 127.0.0.1:5432 (user postgres, database ``test``) and MariaDB on
127.0.0.1:3306 (user root, empty password, database ``test``); override with the environment
variables ``PLAIT_DB_TEST_POSTGRES`` and ``PLAIT_DB_TEST_MYSQL`` (SQLAlchemy URLs). A test whose
service is unreachable is skipped, or fails in CI (``CI`` set: see ``tests/ci_switch.py``).

Every table a test creates has a unique name and is dropped afterwards; every engine (the
plugin's pooled ones and the tests' own) is disposed after each test, so no connection leaks
(warnings are errors in this repository).
"""

from __future__ import annotations

import os
import socket
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plait_db.plugin
import pytest
from ci_switch import service_missing
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository
from plait_db import ENGINES
from plait_sdk.testing import HarnessContext, TaskHarness
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

POSTGRES_URL = os.environ.get("PLAIT_DB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("PLAIT_DB_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}

_reachable: dict[str, str | None] = {}


def require_service(dialect: str) -> None:
    """Skip (or fail in CI) unless the database server of ``dialect`` answers."""
    if dialect == "sqlite":
        return
    url = make_url(POSTGRES_URL if dialect == "postgresql" else MYSQL_URL)
    host, port = url.host or "127.0.0.1", url.port or (5432 if dialect == "postgresql" else 3306)
    if dialect not in _reachable:
        try:
            socket.create_connection((host, port), timeout=2).close()
            _reachable[dialect] = None
        except OSError as error:
            _reachable[dialect] = f"{dialect} is not reachable on {host}:{port} ({error})"
    problem = _reachable[dialect]
    if problem is not None:
        service_missing(problem)


#: The three databases every portable test runs on.
DIALECTS = [
    pytest.param("postgresql", marks=pytest.mark.services, id="postgresql"),
    pytest.param("mysql", marks=pytest.mark.services, id="mariadb"),
    pytest.param("sqlite", id="sqlite"),
]
SERVERS = DIALECTS[:2]


# -- a RunContext: plait_sdk.testing -------------------------------------------------------------


def make_context(root: Path, task_id: str = "query", **options: Any) -> HarnessContext:
    """A task run's context in the harness (namespace ``tests``, flow ``db``) under ``root``."""
    harness = TaskHarness(namespace="tests", flow_id="db", root=root / "harness", **options)
    return harness.context(task_id)


@pytest.fixture
def ctx(tmp_path: Path) -> HarnessContext:
    return make_context(tmp_path)


@pytest.fixture(autouse=True)
async def _dispose_plugin_engines() -> AsyncIterator[None]:
    yield
    await ENGINES.dispose_all()


# -- databases -------------------------------------------------------------------------------------


@dataclass
class Db:
    """One test database: URLs for the tasks, and a private engine to set up and check."""

    dialect: str
    url: str
    """SQLAlchemy URL (sync driver name: the plugin maps it to the async driver)."""
    jdbc: str
    """The same database as a Kestra JDBC URL (credentials as query parameters)."""
    engine: AsyncEngine
    tables: list[str] = field(default_factory=list)

    def table(self, prefix: str = "t") -> str:
        name = f"plait_{prefix}_{uuid.uuid4().hex[:12]}"
        self.tables.append(name)
        return name

    async def execute(self, *statements: str, **params: Any) -> None:
        """Run statements as they are (no placeholders) or with ``:name`` parameters."""
        async with self.engine.begin() as conn:
            for statement in statements:
                if params:
                    await conn.execute(text(statement), params)
                else:  # text() would take ":word" in a literal for a placeholder
                    await conn.execute(text(statement.replace(":", "\\:")))

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(text(sql), params or {})
            return [tuple(row) for row in result]

    async def exists(self, table: str) -> bool:
        probe = {
            "postgresql": "SELECT count(*) FROM information_schema.tables WHERE table_name = :t",
            "mysql": "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = :t",
            "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = :t",
        }[self.dialect]
        return bool((await self.rows(probe, t=table))[0][0])

    async def cleanup(self) -> None:
        for table in reversed(self.tables):
            await self.execute(f"DROP TABLE IF EXISTS {table}")


def _jdbc_of(url: str) -> str:
    parsed = make_url(url)
    query = f"?user={parsed.username}" if parsed.username else ""
    if parsed.password:
        query += f"&password={parsed.password}"
    scheme = "postgresql" if parsed.get_backend_name() == "postgresql" else "mariadb"
    return f"jdbc:{scheme}://{parsed.host}:{parsed.port}/{parsed.database}{query}"


async def open_db(dialect: str, tmp_path: Path) -> Db:
    require_service(dialect)
    if dialect == "sqlite":
        path = tmp_path / "test.sqlite"
        url, jdbc = f"sqlite:///{path}", f"jdbc:sqlite:{path}"
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    else:
        url = POSTGRES_URL if dialect == "postgresql" else MYSQL_URL
        jdbc = _jdbc_of(url)
        engine_url = make_url(url).set(drivername=ASYNC_DRIVERS[dialect])
        engine = create_async_engine(engine_url, poolclass=NullPool)
    return Db(dialect, url, jdbc, engine)


@pytest.fixture(params=DIALECTS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    """Each of PostgreSQL, MariaDB and SQLite in turn."""
    database = await open_db(request.param, tmp_path)
    try:
        yield database
    finally:
        try:
            await database.cleanup()
        finally:
            await database.engine.dispose()


@pytest.fixture(params=SERVERS)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    """Each of the database servers (PostgreSQL, MariaDB) in turn."""
    database = await open_db(request.param, tmp_path)
    try:
        yield database
    finally:
        await database.cleanup()
        await database.engine.dispose()


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Db]:
    database = await open_db("postgresql", tmp_path)
    try:
        yield database
    finally:
        await database.cleanup()
        await database.engine.dispose()


@pytest.fixture
async def mysql(tmp_path: Path) -> AsyncIterator[Db]:
    database = await open_db("mysql", tmp_path)
    try:
        yield database
    finally:
        await database.cleanup()
        await database.engine.dispose()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Db]:
    database = await open_db("sqlite", tmp_path)
    try:
        yield database
    finally:
        await database.cleanup()
        await database.engine.dispose()


# -- the real engine -------------------------------------------------------------------------------


class Harness:
    """The real Runner over a fresh SQLite store, with the plait-db plugin loaded."""

    def __init__(self, runner: Runner, host: PluginHost, secrets: dict[str, str]) -> None:
        self.runner = runner
        self.repo = runner.repo
        self.host = host
        self.secrets = secrets

    async def run(self, source: str, inputs: dict[str, Any] | None = None) -> Execution:
        flow, revision = await self.runner.deploy(textwrap.dedent(source), file="flow.yaml")
        return await self.runner.run(flow, revision, inputs or {})

    async def everything(self, execution: Execution) -> str:
        """Everything an execution left behind: state, outputs, errors and logs, as text."""
        stored = await self.repo.get_execution(execution.id)
        assert stored is not None
        logs = await self.repo.logs(execution.id)
        return stored.model_dump_json() + "\n".join(r.message for r in logs)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    host = PluginHost.discover(entry_points=False, extra=[plait_db.plugin])
    assert host.healthy, [r.errors for r in host.records]
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    secrets: dict[str, str] = {}

    async def lookup(namespace: str, name: str) -> str:
        return secrets[name]

    runner = Runner(
        repo,
        host,
        LocalStorageBackend(tmp_path / "storage"),
        secrets=lookup,
        poll_interval=0.05,
        rng_seed=7,
    )
    try:
        yield Harness(runner, host, secrets)
    finally:
        await host.shutdown()
        await repo.close()
