"""Fixtures: a real S3 HTTP endpoint (moto in server mode) on loopback, contexts and a runner.

The moto server (``ThreadedMotoServer``) runs in a child process started once per session: a
real HTTP server, and its own memory is not counted by the tracemalloc checks of this process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository
from plait_s3 import plugin
from plait_sdk.testing import HarnessContext, TaskHarness

from . import s3testplugin

P = ParamSpec("P")
T = TypeVar("T")

#: Dummy credentials of the standard AWS chain (environment) for the whole session.
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAPLAITENVDUMMY000",
    "AWS_SECRET_ACCESS_KEY": "plait-env-dummy-secret-0000",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/plait-s3-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/plait-s3-tests/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: Secrets flows read with ``secret('...')``.
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPLAITSECRETKEY01",
    "AWS_SECRET_KEY_ID": "plait-secret-access-key-from-secret-store",
    "BAD_ACCESS_KEY_ID": "AKIAPLAITREVOKEDKEY1",
    "BAD_SECRET_KEY_ID": "plait-revoked-secret-key-never-shown",
}

_MOTO = textwrap.dedent(
    """
    import logging, sys
    logging.disable(logging.CRITICAL)
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    # Until the session closes our end of the pipe: "seed <bucket> <key>..." stores objects
    # (body = key) straight in the backend, as 1,000 PUTs over HTTP would take seconds.
    for line in sys.stdin:
        bucket, *keys = line.split()[1:]
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, key.encode())
        print("ok", flush=True)
    server.stop()
    """
)


class MotoServer:
    """The child process running moto's HTTP server."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint

    def seed(self, bucket: str, keys: list[str]) -> None:
        """Store objects (each body is its key) without 1,000 HTTP round trips."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        assert all(k and not any(c.isspace() for c in k) for k in keys)
        self.process.stdin.write(" ".join(["seed", bucket, *keys]) + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        process = subprocess.Popen(
            [sys.executable, "-c", _MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            line = process.stdout.readline()
            assert line.strip().isdigit(), f"moto server did not start: {line!r}"
            yield MotoServer(process, f"http://127.0.0.1:{int(line)}")
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


@pytest.fixture(scope="session")
def moto_endpoint(moto: MotoServer) -> str:
    return moto.endpoint


def _set_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


@pytest.fixture
def iam_auth(moto_endpoint: str, bucket: str) -> Iterator[None]:
    """The server checks credentials (moto accepts anything otherwise)."""
    _set_auth(moto_endpoint, "0")
    try:
        yield
    finally:
        _set_auth(moto_endpoint, "inf")


@pytest.fixture
def conn(moto_endpoint: str) -> dict[str, Any]:
    """Connection properties of the tasks under test (credentials: the environment chain)."""
    return {"endpointOverride": moto_endpoint, "forcePathStyle": True, "region": "us-east-1"}


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Every test ends by closing the plugin's pooled clients, as the hub does on shutdown."""
    yield
    await plugin.plait_shutdown()


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[Any]:
    """A raw client of its own, to arrange and check the bucket contents."""
    config = AioConfig(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=50,
    )
    async with _SESSION.create_client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", config=config
    ) as client:
        yield client


#: One botocore session for the raw clients: it caches the service model (slow to load).
_SESSION = get_session()


def new_bucket_name() -> str:
    return f"plait-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def bucket(s3: Any) -> str:
    name = new_bucket_name()
    await s3.create_bucket(Bucket=name)
    return name


async def keys_of(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", ())]
    return found


async def read(s3: Any, bucket: str, key: str) -> bytes:
    got = await s3.get_object(Bucket=bucket, Key=key)
    async with got["Body"] as body:
        data: bytes = await body.read()
    return data


# -- a RunContext: plait_sdk.testing ------------------------------------------------------------


def make_context(root: Path, *, flow_id: str = "s3", task_id: str = "task") -> HarnessContext:
    """What a task (or the trigger) sees, from the SDK's harness: contexts made with the same
    ``root`` and flow share their files, as the runs of one flow do."""
    harness = TaskHarness(
        namespace="tests.s3",
        flow_id=flow_id,
        execution_id="exec1",
        secrets=SECRETS,
        root=root / "harness",
    )
    return harness.context(task_id)


@pytest.fixture
def ctx(tmp_path: Path) -> HarnessContext:
    return make_context(tmp_path)


# -- the real engine ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def host() -> PluginHost:
    found = PluginHost.discover(entry_points=False, extra=[plugin, s3testplugin])
    assert found.healthy, [r.errors for r in found.records]
    return found


class Engine:
    """The real Runner over a fresh SQLite store and local internal storage."""

    def __init__(self, runner: Runner, tmp: Path) -> None:
        self.runner = runner
        self.tmp = tmp

    async def run(self, source: str, **kwargs: Any) -> Execution:
        flow, revision = await self.runner.deploy(textwrap.dedent(source), file="flow.yaml")
        return await self.runner.run(flow, revision, {}, **kwargs)

    async def logs(self, execution: Execution) -> str:
        return "\n".join(r.message for r in await self.runner.repo.logs(execution.id))


def outputs(execution: Execution, task_id: str) -> dict[str, Any]:
    found = [r for r in execution.task_runs if r.task_id == task_id]
    assert len(found) == 1, f"{task_id}: {len(found)} runs"
    return found[0].outputs


@pytest.fixture
async def engine(tmp_path: Path, host: PluginHost) -> AsyncIterator[Engine]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()

    async def secrets(namespace: str, name: str) -> str:
        return SECRETS[name]

    runner = Runner(
        repo,
        host,
        LocalStorageBackend(tmp_path / "engine-storage"),
        secrets=secrets,
        poll_interval=0.05,
    )
    try:
        yield Engine(runner, tmp_path)
    finally:
        await repo.close()
