"""The project-local Plait home: embedded database, internal storage and secrets in one folder.

``plait run`` and ``plait executions`` work against ``./.plait`` (or ``$PLAIT_HOME``, or
``--home``), so a flow can be run, inspected, resumed and restarted with no server and no set-up.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from plait.engine import Execution, LogRecord
from plait.engine._runner import Runner
from plait.runtime import plugin_host
from plait.secrets._backends import EnvSecretBackend, FileSecretBackend, SecretResolver
from plait.storage import LocalStorageBackend, SqlRepository

ENV_HOME = "PLAIT_HOME"
DEFAULT_HOME = ".plait"


@dataclass(frozen=True)
class LocalHome:
    """Where the embedded backend keeps its files."""

    root: Path

    @classmethod
    def resolve(cls, path: Path | None = None) -> LocalHome:
        return cls((path or Path(os.environ.get(ENV_HOME, DEFAULT_HOME))).absolute())

    @property
    def database(self) -> Path:
        return self.root / "plait.db"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"


@asynccontextmanager
async def local_runner(
    home: LocalHome,
    *,
    on_log: Callable[[LogRecord], None] | None = None,
    on_step: Callable[[Execution], None] | None = None,
) -> AsyncIterator[Runner]:
    """A runner over the home's SQLite database, closed on exit."""
    repo = SqlRepository.sqlite(home.database)
    await repo.open()
    resolver = SecretResolver(
        [
            ("environment (PLAIT_SECRET_<NAME>)", EnvSecretBackend()),
            (f"files under {home.secrets}", FileSecretBackend(home.secrets)),
        ]
    )
    try:
        yield Runner(
            repo,
            plugin_host(),
            LocalStorageBackend(home.storage),
            secrets=resolver.get,
            on_log=on_log,
            on_step=on_step,
        )
    finally:
        await resolver.close()
        await repo.close()
