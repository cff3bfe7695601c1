"""HTTP extract -> transform -> load into PostgreSQL, end to end.

The flow is docs/examples/etl_http_to_postgres.yaml, as written there. It runs on the real engine
(the Runner over SQLite and local internal storage) with the installed plugins found through
their entry points, against a JSON API served by aiohttp on loopback that answers only to the
right bearer token, and the PostgreSQL server of the test services (127.0.0.1:5432, database
``test``; ``PLAIT_DB_TEST_POSTGRES`` overrides it). Both secrets, the API token and the database
password, come from the encrypted secret store (``SecretStore`` over the same SQLite database,
sealed with a fresh key ring), as ``plait run`` wires it. PostgreSQL trusts local connections
here, so the password is not checked by the server, but the flow still passes it.

Without PostgreSQL the test is skipped, or fails in CI (``CI`` set: see ``ci_switch``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ci_switch import service_missing
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import PluginHost
from plait.records import Execution
from plait.secrets import KeyRing, MasterKey
from plait.secrets._backends import SecretResolver
from plait.secrets._store import SecretStore
from plait.storage import SqlRepository
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.services

FLOW = Path(__file__).resolve().parents[2] / "docs" / "examples" / "etl_http_to_postgres.yaml"
NAMESPACE = "company.etl"
POSTGRES_URL = os.environ.get("PLAIT_DB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

#: What the API serves: messy names and countries, one cancelled order, amounts in units.
ORDERS: list[dict[str, Any]] = [
    {"id": 101, "customer": "  ada lovelace ", "country": "gb", "amount": 12.5,
     "status": "paid", "created_at": "2024-05-01T09:30:00Z"},
    {"id": 102, "customer": "alan turing", "country": " gb", "amount": 0.99,
     "status": "paid", "created_at": "2024-05-01T23:59:59+02:00"},
    {"id": 103, "customer": "grace hopper", "country": "us", "amount": 250,
     "status": "cancelled", "created_at": "2024-05-02T08:00:00Z"},
    {"id": 104, "customer": "KATHERINE JOHNSON", "country": "us", "amount": 19.99,
     "status": "shipped", "created_at": "2024-05-02T12:00:00Z"},
    {"id": 105, "customer": "edsger dijkstra", "country": "nl", "amount": 7,
     "status": "paid", "created_at": "2024-05-03"},
    {"id": 106, "customer": "barbara liskov", "country": "us", "amount": 1234.56,
     "status": "paid", "created_at": "2024-05-04T00:00:00Z"},
]  # fmt: skip
#: The rows the flow must leave in PostgreSQL: (order_id, customer, country, cents, day).
EXPECTED = [
    (101, "Ada Lovelace", "GB", 1250, "2024-05-01"),
    (102, "Alan Turing", "GB", 99, "2024-05-01"),
    (104, "Katherine Johnson", "US", 1999, "2024-05-02"),
    (105, "Edsger Dijkstra", "NL", 700, "2024-05-03"),
    (106, "Barbara Liskov", "US", 123456, "2024-05-04"),
]


@dataclass
class Api:
    """The JSON API: GET /v1/orders with ``Authorization: Bearer <token>``."""

    token: str
    url: str = ""
    calls: list[str | None] = field(default_factory=list)
    """The Authorization header of every call."""


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    served = Api(token=f"api-token-{uuid.uuid4().hex}")

    async def orders(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        served.calls.append(header)
        if header != f"Bearer {served.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"orders": ORDERS})

    app = web.Application()
    app.router.add_get("/v1/orders", orders)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}/v1/orders"
    try:
        yield served
    finally:
        await runner.cleanup()


def _require_postgres() -> None:
    url = make_url(POSTGRES_URL)
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        problem = f"PostgreSQL is not reachable on {host}:{port} ({error})"
        service_missing(problem)


@dataclass
class Postgres:
    engine: AsyncEngine
    jdbc: str
    user: str
    table: str

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]


@pytest.fixture
async def postgres() -> AsyncIterator[Postgres]:
    """The test database, and a unique table name dropped afterwards."""
    _require_postgres()
    url = make_url(POSTGRES_URL)
    engine = create_async_engine(url.set(drivername="postgresql+asyncpg"), poolclass=NullPool)
    table = f"plait_e2e_orders_{uuid.uuid4().hex[:12]}"
    jdbc = f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}"
    try:
        yield Postgres(engine, jdbc, url.username or "postgres", table)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()


@dataclass
class Plait:
    runner: Runner
    repo: SqlRepository
    store: SecretStore
    database: Path

    async def run(self, inputs: dict[str, Any]) -> Execution:
        flow, revision = await self.runner.deploy(FLOW.read_text("utf-8"), file=str(FLOW))
        return await self.runner.run(flow, revision, inputs)

    async def everything(self, execution: Execution) -> str:
        """What the execution left in the store: its JSON (outputs, errors...) and its logs."""
        stored = await self.repo.get_execution(execution.id)
        assert stored is not None
        logs = await self.repo.logs(execution.id)
        return stored.model_dump_json() + "\n" + "\n".join(record.message for record in logs)


@pytest.fixture
async def plait(tmp_path: Path) -> AsyncIterator[Plait]:
    """The installed plugins and the Runner, with the encrypted secret store as its lookup."""
    host = PluginHost.discover()
    assert host.healthy, [r.errors for r in host.records if r.errors]
    database = tmp_path / "plait.db"
    repo = SqlRepository.sqlite(database)
    await repo.open()
    store = SecretStore(repo, KeyRing([MasterKey.generate()]))
    resolver = SecretResolver([("store", store)])
    runner = Runner(
        repo,
        host,
        LocalStorageBackend(tmp_path / "storage"),
        secrets=resolver.get,
        poll_interval=0.05,
    )
    try:
        yield Plait(runner, repo, store, database)
    finally:
        await host.shutdown()  # closes plait-db's connection pools
        await resolver.close()
        await repo.close()


def _outputs(execution: Execution, task_id: str) -> Any:
    [run] = [r for r in execution.task_runs if r.task_id == task_id]
    return run.outputs


async def test_http_extract_transform_load_into_postgres(
    api: Api, postgres: Postgres, plait: Plait
) -> None:
    db_password = f"Db-P@ss:{uuid.uuid4().hex}/%"
    await plait.store.set(NAMESPACE, "API_TOKEN", api.token)
    await plait.store.set(NAMESPACE, "DB_PASSWORD", db_password)
    inputs = {
        "api_url": api.url,
        "db_url": postgres.jdbc,
        "db_user": postgres.user,
        "table": postgres.table,
    }

    execution = await plait.run(inputs)

    assert execution.state is State.SUCCESS, execution.error
    assert api.calls == [f"Bearer {api.token}"]
    # The rows in PostgreSQL: transformed, the cancelled order left out.
    rows = await postgres.rows(
        "SELECT order_id, customer, country, amount_cents, ordered_on::text, execution_id "
        f"FROM {postgres.table} ORDER BY order_id"
    )
    assert [row[:5] for row in rows] == EXPECTED
    assert {row[5] for row in rows} == {execution.id}
    # Read back by the flow with a Query FETCH.
    readback = _outputs(execution, "readback")
    assert readback["size"] == len(EXPECTED)
    assert [
        (r["order_id"], r["customer"], r["country"], r["amount_cents"], r["ordered_on"])
        for r in readback["rows"]
    ] == EXPECTED
    assert execution.outputs == {"loaded": len(EXPECTED)}
    skipped = [
        r for r in execution.task_runs if r.task_id == "upsert" and r.state.value == "SKIPPED"
    ]
    assert len(skipped) == 1

    # Neither secret anywhere in what the execution left: its JSON, outputs and logs.
    everything = await plait.everything(execution)
    assert "loaded 5 of 6 orders, 127504 cents in total" in everything
    assert api.token not in everything
    assert db_password not in everything
    # And the secret store keeps them encrypted: the database file never holds them in clear.
    raw = plait.database.read_bytes()
    assert api.token.encode() not in raw
    assert db_password.encode() not in raw

    # A second run upserts: still five rows, now stamped with the second execution.
    again = await plait.run(inputs)
    assert again.state is State.SUCCESS, again.error
    assert await postgres.rows(
        f"SELECT count(*), min(execution_id), max(execution_id) FROM {postgres.table}"
    ) == [(len(EXPECTED), again.id, again.id)]


async def test_a_wrong_token_fails_the_extract_without_showing_it(
    api: Api, postgres: Postgres, plait: Plait
) -> None:
    wrong = f"wrong-token-{uuid.uuid4().hex}"
    await plait.store.set(NAMESPACE, "API_TOKEN", wrong)
    await plait.store.set(NAMESPACE, "DB_PASSWORD", "unused")
    execution = await plait.run(
        {"api_url": api.url, "db_url": postgres.jdbc, "table": postgres.table}
    )
    assert execution.state is State.FAILED
    [extract] = [r for r in execution.task_runs if r.task_id == "extract"]
    assert extract.error is not None
    assert "HTTP 401" in extract.error
    assert api.calls == [f"Bearer {wrong}"]
    assert wrong not in await plait.everything(execution)
    # Nothing ran after the extract: the table was never created.
    assert await postgres.rows(f"SELECT to_regclass('{postgres.table}') IS NULL") == [(True,)]

    # The API itself refuses a call without the token.
    async with aiohttp.ClientSession() as session, session.get(api.url) as response:
        assert response.status == 401
