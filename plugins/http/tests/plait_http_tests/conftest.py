from __future__ import annotations

import datetime
import ipaddress
import ssl
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plait_http.plugin
import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository
from plait_sdk.testing import HarnessContext, TaskHarness

from .server import TOKEN, State, make_app

SECRETS = {"API_TOKEN": TOKEN, "API_PASSWORD": "s3cret-pa55word"}


@dataclass
class Server:
    """A running test server: its base URL and what it saw."""

    server: TestServer
    state: State

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def url(self, path: str) -> str:
        return self.base + path


async def _serve(ssl_context: ssl.SSLContext | None = None) -> tuple[TestServer, State]:
    state = State()
    server = TestServer(make_app(state), host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    return server, state


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    test_server, state = await _serve()
    try:
        yield Server(test_server, state)
    finally:
        state.release.set()
        await test_server.close()


@pytest.fixture
def ctx(tmp_path: Path) -> HarnessContext:
    return TaskHarness(secrets=SECRETS, root=tmp_path).context()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    pem: str


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (folder / "cert.pem").write_text(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(folder / "cert.pem", folder / "key.pem", pem)


@pytest.fixture
async def tls_server(certificate: Certificate) -> AsyncIterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    test_server, state = await _serve(context)
    try:
        yield Server(test_server, state)
    finally:
        state.release.set()
        await test_server.close()


# -- the real engine -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def host() -> PluginHost:
    return PluginHost.discover(entry_points=False, extra=[plait_http.plugin])


class Harness:
    """A runner over a fresh SQLite store with plait-http registered."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.repo = runner.repo

    async def run(self, source: str, inputs: dict[str, Any] | None = None) -> Execution:
        flow, revision = await self.runner.deploy(textwrap.dedent(source), file="flow.yaml")
        return await self.runner.run(flow, revision, inputs or {})

    async def everything(self, execution: Execution) -> str:
        """The stored execution and its logs as one text, to look for leaked values."""
        stored = await self.repo.get_execution(execution.id)
        assert stored is not None
        logs = await self.repo.logs(execution.id)
        return stored.model_dump_json() + "\n".join(r.message for r in logs)


@pytest.fixture
async def harness(tmp_path: Path, host: PluginHost) -> AsyncIterator[Harness]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()

    async def secrets(namespace: str, name: str) -> str:
        return SECRETS[name]

    runner = Runner(
        repo,
        host,
        LocalStorageBackend(tmp_path / "storage"),
        secrets=secrets,
        poll_interval=0.05,
        rng_seed=7,
    )
    try:
        yield Harness(runner)
    finally:
        await repo.close()
