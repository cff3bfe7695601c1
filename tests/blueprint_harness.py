"""The blueprint tests' harness: fixtures shared by every blueprint test, started once per session.

- ``saas``: one aiohttp server on loopback (in its own thread) standing in for the SaaS APIs
  the blueprints call; each test mounts the routes it needs under a unique prefix and reads
  back what the server received.
- ``pg`` / ``maria``: the PostgreSQL and MariaDB of the test services, with helpers to run
  SQL and unique table names (dropped at the end of the session).
- ``s3``: moto's S3 server (tests/moto_server.py, shared with the end-to-end tests) and a
  boto3 client of it.
- ``plait``: the real engine (Runner over SQLite and local storage, the installed plugins
  found through their entry points) with the encrypted secret store; one per test (cheap).

Without PostgreSQL or MariaDB their tests are skipped, or fail in CI (``ci_switch``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ci_switch import service_missing
from live_server import LiveServer, call, start_server
from moto_server import moto_s3
from plait.blueprints import find, instantiate, library
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.kv import KVStore
from plait.plugins import PluginHost
from plait.records import Execution
from plait.secrets import KeyRing, MasterKey
from plait.secrets._backends import SecretResolver
from plait.secrets._store import SecretStore
from plait.storage import SqlRepository

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("PLAIT_DB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- the SaaS stand-in ----------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Saas:
    """A loopback HTTP server whose routes tests add: ``mount()`` gives a fresh prefix."""

    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=dict)

    def mount(self, handlers: dict[str, Handler | Any]) -> Mount:
        """Routes under a unique prefix; a handler may be a JSON value answered as is."""
        prefix = "/" + uuid.uuid4().hex[:10]
        for path, handler in handlers.items():
            self.routes[prefix + path] = handler if callable(handler) else _constant(handler)
        self.received[prefix] = []
        return Mount(self, prefix)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        prefix = "/" + request.path.split("/")[1]
        body = await request.read()
        if prefix in self.received:
            self.received[prefix].append(
                Received(request.method, request.path[len(prefix) :], dict(request.headers),
                         body, time.monotonic(), dict(request.query))
            )  # fmt: skip
        handler = self.routes.get(request.path)
        if handler is None:
            return web.json_response({"error": "no such route"}, status=404)
        return await handler(request)


@dataclass
class Mount:
    saas: Saas
    prefix: str

    def url(self, path: str = "") -> str:
        return self.saas.url + self.prefix + path

    def calls(self, path: str | None = None) -> list[Received]:
        return [r for r in self.saas.received[self.prefix] if path is None or r.path == path]


def _constant(value: Any) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response(value)

    return answer


@pytest.fixture(scope="session")
def saas() -> Iterator[Saas]:
    served = Saas()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", served.dispatch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        served.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield served
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


# -- databases ------------------------------------------------------------------------------


def _reachable(host: str, port: int, name: str) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        service_missing(f"{name} is not reachable on {host}:{port} ({error})")


@dataclass
class Database:
    jdbc: str
    user: str
    connect: Callable[[], Any]
    tables: list[str] = field(default_factory=list)

    def table(self, stem: str) -> str:
        name = f"bp_{stem}_{uuid.uuid4().hex[:8]}"
        self.tables.append(name)
        return name

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = list(cur.fetchall()) if cur.description else []
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()


@pytest.fixture(scope="session")
def pg() -> Iterator[Database]:
    import psycopg

    _reachable("127.0.0.1", 5432, "PostgreSQL")
    db = Database("jdbc:postgresql://127.0.0.1:5432/test", "postgres",
                  lambda: psycopg.connect(POSTGRES))  # fmt: skip
    yield db
    for table in db.tables:
        db.sql(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture(scope="session")
def maria() -> Iterator[Database]:
    import pymysql

    _reachable("127.0.0.1", 3306, "MariaDB")
    db = Database("jdbc:mariadb://127.0.0.1:3306/test", "root",
                  lambda: pymysql.connect(host="127.0.0.1", port=3306, user="root",
                                          password="", database="test"))  # fmt: skip
    yield db
    for table in db.tables:
        db.sql(f"DROP TABLE IF EXISTS {table}")


# -- S3 -------------------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str
    client: Any

    def bucket(self) -> str:
        name = f"bp-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        listed = self.client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: self.client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listed
        }


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    import boto3

    with moto_s3() as endpoint:
        yield S3(endpoint, boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1"))


# -- the engine -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def host() -> PluginHost:
    found = PluginHost.discover()
    assert found.healthy, [r.errors for r in found.records if r.errors]
    return found


@dataclass
class Plait:
    runner: Runner
    repo: SqlRepository
    store: SecretStore
    storage: Path

    async def blueprint(
        self, blueprint_id: str, inputs: dict[str, Any], namespace: str = "company.team"
    ) -> Execution:
        """Deploy the blueprint as a flow of ``namespace`` (as `plait blueprints use` does) and
        run it with ``inputs`` until it ends or pauses."""
        entry = find(self.runner.host.registry, blueprint_id)
        source = instantiate(entry.blueprint, namespace)
        flow, revision = await self.runner.deploy(source, file=f"blueprint:{blueprint_id}")
        return await self.runner.run(flow, revision, inputs)

    async def flow(self, source: str, inputs: dict[str, Any] | None = None) -> Execution:
        flow, revision = await self.runner.deploy(textwrap.dedent(source), file="caller.yaml")
        return await self.runner.run(flow, revision, inputs or {})

    async def logs(self, execution: Execution) -> str:
        return "\n".join(r.message for r in await self.repo.logs(execution.id))

    async def read(self, uri: str) -> bytes:
        key = uri.removeprefix("plait:///")
        chunks = [c async for c in self.runner.storage.get(key)]
        return b"".join(chunks)


@pytest.fixture
async def plait(tmp_path: Path, host: PluginHost) -> AsyncIterator[Plait]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    store = SecretStore(repo, KeyRing([MasterKey.generate()]))
    resolver = SecretResolver([("store", store)])
    runner = Runner(
        repo, host, LocalStorageBackend(tmp_path / "storage"), secrets=resolver.get,
        kv=KVStore(repo), poll_interval=0.05,
    )  # fmt: skip
    try:
        yield Plait(runner, repo, store, tmp_path / "storage")
    finally:
        await host.shutdown()  # plait-db's pools belong to this test's event loop
        await resolver.close()
        await repo.close()


def task_run(execution: Execution, task_id: str) -> Any:
    """The (last) run of ``task_id``."""
    runs = [r for r in execution.task_runs if r.task_id == task_id]
    assert runs, f"{task_id} never ran: {[r.task_id for r in execution.task_runs]}"
    return runs[-1]


# -- a live server with the trigger blueprints deployed ---------------------------------------

GITHUB_SECRET = "gh-blueprint-secret"
STRIPE_SECRET = "whsec_blueprint_test"
SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture(scope="session")
def hooks(
    tmp_path_factory: pytest.TempPathFactory, saas: Saas, pg: Database
) -> Iterator[tuple[LiveServer, dict[str, str], Any, str]]:
    root = tmp_path_factory.mktemp("bp-triggers")
    flows = root / "flows"
    flows.mkdir()
    keys: dict[str, str] = {}
    by_id = {b.id: b for b in library()}
    for blueprint_id, flow_id in (
        ("triggers.github-push-to-slack", "push"),
        ("triggers.stripe-payment-to-postgres", "payments"),
        ("triggers.slack-slash-command", "slash"),
    ):
        text = instantiate(by_id[blueprint_id], "company.hooks", flow_id)
        assert "BLUEPRINT_WEBHOOK_KEY_PLACEHOLDER" not in text
        keys[flow_id] = re.search(r"key: (\S+)", text).group(1)  # type: ignore[union-attr]
        (flows / f"{flow_id}.yaml").write_text(text)
    # One Slack stand-in: the incoming webhook, a slash command's response_url, a status page.
    status_page = {"status": {"indicator": "minor", "description": "Partially Degraded Service"}}
    slack = saas.mount({"/slack": {"ok": True}, "/respond": {"ok": True},
                        "/status.json": status_page})  # fmt: skip
    table = pg.table("payments")
    secrets = {
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "SLACK_WEBHOOK_URL": slack.url("/slack"),
        "PAYMENTS_DB_URL": pg.jdbc,
        "PAYMENTS_DB_USER": pg.user,
        "PAYMENTS_DB_PASSWORD": "unused",
    }
    env = {f"PLAIT_SECRET_{k}": base64.b64encode(v.encode()).decode() for k, v in secrets.items()}
    (flows / "payments.yaml").write_text(
        (flows / "payments.yaml")
        .read_text()
        .replace("defaults: stripe_payments", f"defaults: {table}")
    )
    slash = (flows / "slash.yaml").read_text()
    status_default = "defaults: https://status.example.com/api/v2/status.json"
    assert status_default in slash
    (flows / "slash.yaml").write_text(
        slash.replace(status_default, f"defaults: {slack.url('/status.json')}")
    )
    server = start_server(root / "home", "--deploy", str(flows), env=env)
    try:
        yield server, keys, slack, table
    finally:
        server.stop()


async def post_hook(
    live: LiveServer, flow_id: str, key: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    url = f"{live.api}/executions/webhook/company.hooks/{flow_id}/{key}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}
        ) as response,
    ):
        text = await response.text()
        return response.status, (json.loads(text) if "json" in response.content_type else text)


async def ended(live: LiveServer, flow_id: str, count: int) -> list[dict[str, Any]]:
    for _ in range(600):
        found = await call(live, "GET", "/executions/search",
                           params={"namespace": "company.hooks", "flowId": flow_id})  # fmt: skip
        done = [
            e for e in found["results"] if e["state"]["current"] in ("SUCCESS", "FAILED", "WARNING")
        ]
        if len(done) >= count:
            return done
        await _sleep()
    raise AssertionError(f"{flow_id}: {count} execution(s) never ended")


async def _sleep() -> None:
    await asyncio.sleep(0.05)
