from __future__ import annotations

import shutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import plait_scripts.plugin
import pytest
from ci_switch import service_missing
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository
from plait_sdk.testing import HarnessContext

from ._support import context

SECRETS = {"API_TOKEN": "s3cr3t-token-value"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def ctx(workdir: Path) -> HarnessContext:
    return context(workdir)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dependency environments go to a fresh directory: never the user's cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PLAIT_SCRIPTS_CACHE", str(path))
    return path


@pytest.fixture
def node() -> str:
    """Node.js on PATH; skipped without it, except in CI where that is a failure."""
    found = shutil.which("node")
    if found is None:
        service_missing("node is not installed (not on PATH)")
    return found


@pytest.fixture(scope="session")
def host() -> PluginHost:
    return PluginHost.discover(entry_points=False, extra=[plait_scripts.plugin])


class Harness:
    """The real Runner over a fresh SQLite store and local storage."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.repo = runner.repo

    async def run(self, source: str, inputs: dict[str, Any] | None = None) -> Execution:
        flow, revision = await self.runner.deploy(textwrap.dedent(source), file="flow.yaml")
        return await self.runner.run(flow, revision, inputs or {})

    async def reload(self, execution: Execution) -> Execution:
        stored = await self.repo.get_execution(execution.id)
        assert stored is not None
        return stored


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
