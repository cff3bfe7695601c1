from __future__ import annotations

import base64
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.records import Execution
from plait.secrets._backends import EnvSecretBackend, SecretResolver
from plait.storage import SqlRepository

from . import testplugin

SECRETS = {"API_TOKEN": "s3cr3t-token-value"}


@pytest.fixture(scope="session")
def host() -> PluginHost:
    return PluginHost.discover(entry_points=False, extra=[testplugin])


class Harness:
    """A runner over a fresh SQLite store, and helpers to run flow sources."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.repo = runner.repo

    async def deploy(self, source: str) -> Any:
        return await self.runner.deploy(textwrap.dedent(source), file="flow.yaml")

    async def run(self, source: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Execution:
        flow, revision = await self.deploy(source)
        return await self.runner.run(flow, revision, inputs or {}, **kw)

    async def reload(self, execution: Execution) -> Execution:
        stored = await self.repo.get_execution(execution.id)
        assert stored is not None
        return stored


def runs(execution: Execution, task_id: str) -> list[Any]:
    return [r for r in execution.task_runs if r.task_id == task_id]


def state_of(execution: Execution, task_id: str) -> str:
    found = runs(execution, task_id)
    assert len(found) == 1, f"{task_id}: {len(found)} runs"
    return found[0].state.value


@pytest.fixture
async def harness(tmp_path: Path, host: PluginHost) -> AsyncIterator[Harness]:
    testplugin.reset()
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()

    # The real resolver, as the CLI builds it (its messages are part of what tests check).
    environ = {
        f"PLAIT_SECRET_{k}": base64.b64encode(v.encode()).decode() for k, v in SECRETS.items()
    }
    secrets = SecretResolver([("environment", EnvSecretBackend(environ))]).get

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
