"""The project-local Plait home: embedded database, internal storage, master key and secrets.

``plait run``, ``plait executions`` and ``plait secrets`` work against ``./.plait`` (or
``$PLAIT_HOME``, or ``--home``), so a flow can be run, inspected, resumed and restarted with no
server and no set-up.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait_sdk import SecretBackend, UserError

from plait.engine import Runner
from plait.files import LocalStorageBackend, make_private_dirs, tighten
from plait.kv import KVStore
from plait.nsfiles import NamespaceFileStore
from plait.records import Execution, LogRecord
from plait.runtime import plugin_host, settle_heap
from plait.secrets import ENV_KEY, ENV_KEY_FILE, KeyRing, SecretResolver, SecretStore, load_key_ring
from plait.storage import SqlRepository

ENV_HOME = "PLAIT_HOME"
DEFAULT_HOME = ".plait"
ENV_SECRET_BACKENDS = "PLAIT_SECRET_BACKENDS"
DEFAULT_SECRET_BACKENDS = "store,env,file"


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
        """The file secret backend's directory."""
        return self.root / "secrets"

    def secure(self) -> None:
        """Create the home 0700, or take group and other permissions off an existing one (and
        off its storage root): logs, outputs, KV entries and files are only its owner's."""
        make_private_dirs(self.root)
        tighten(self.root)
        tighten(self.storage)

    @property
    def key_file(self) -> Path:
        return Path(os.environ.get(ENV_KEY_FILE) or self.root / "master.key")

    def key_ring(
        self, *, create: bool = True, notify: Callable[[str], None] | None = None
    ) -> KeyRing:
        if not os.environ.get(ENV_KEY) and not self.key_file.exists():
            # A new key cannot open what the lost one sealed: creating it would hide the loss
            # until a read fails. Refuse, and say what to restore.
            sealed = sealed_key_ids(self.database)
            if sealed:
                ids = ", ".join(sorted(sealed))
                raise UserError(
                    f"master key file {self.key_file} is missing, but {self.database} holds "
                    f"values sealed with key {ids}: restore the key file from a backup (mode "
                    f"0600) or set {ENV_KEY} to that key; no new key was created"
                )
        ring, notice = load_key_ring(self.key_file, create=create)
        if notice and notify is not None:
            notify(notice)
        return ring


_KEY_ID = re.compile(r'"\$key"\s*:\s*"([0-9a-f]{16})"')


def sealed_key_ids(database: Path) -> set[str]:
    """Ids of the master keys that values in ``database`` are sealed with: secrets of the
    store, SECRET inputs and outputs holding a secret (empty for a new home).

    Runs before anything else opens the database, so plain sqlite3 (and no migration).
    """
    if not database.exists():
        return set()
    ids: set[str] = set()
    with closing(sqlite3.connect(database)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "secrets" in tables:
            ids.update(row[0] for row in conn.execute("SELECT DISTINCT key_id FROM secrets"))
        for table in ("executions", "task_runs"):
            if table not in tables:
                continue
            query = f"SELECT document FROM {table} WHERE document LIKE '%\"$key\"%'"
            for (document,) in conn.execute(query):
                ids.update(_KEY_ID.findall(document))
    return ids


def secret_backends(
    home: LocalHome, repo: SqlRepository, ring: KeyRing
) -> list[tuple[str, SecretBackend]]:
    """The secret backends in lookup order (``$PLAIT_SECRET_BACKENDS``, default store,env,file)."""
    host = plugin_host()
    config: dict[str, Any] = {
        "repository": repo,
        "key_ring": ring,
        "reload_keys": lambda: home.key_ring(create=False),
        "path": os.environ.get("PLAIT_SECRETS_DIR") or str(home.secrets),
    }
    names = [
        n.strip() for n in os.environ.get(ENV_SECRET_BACKENDS, DEFAULT_SECRET_BACKENDS).split(",")
    ]
    backends = []
    for name in filter(None, names):
        if name not in host.secret_backends:
            known = ", ".join(sorted(host.secret_backends))
            raise UserError(
                f"{ENV_SECRET_BACKENDS}: unknown secret backend '{name}' (known: {known})"
            )
        factory, _origin = host.secret_backends[name]
        backends.append((_label(name, home), factory(config)))
    return backends


def _label(name: str, home: LocalHome) -> str:
    return {
        "store": "the encrypted store",
        "env": "environment (PLAIT_SECRET_<NAME>)",
        "file": f"files under {os.environ.get('PLAIT_SECRETS_DIR') or home.secrets}",
    }.get(name, name)


@asynccontextmanager
async def local_repository(home: LocalHome) -> AsyncIterator[SqlRepository]:
    await asyncio.to_thread(home.secure)
    repo = SqlRepository.sqlite(home.database)
    await repo.open()
    try:
        yield repo
    finally:
        await repo.close()


@asynccontextmanager
async def local_runner(
    home: LocalHome,
    *,
    on_log: Callable[[LogRecord], None] | None = None,
    on_step: Callable[[Execution], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> AsyncIterator[Runner]:
    """A runner over the home's SQLite database, closed on exit.

    The master key is created on first use (mode 0600) and ``notify`` is told where.
    """
    ring = home.key_ring(create=True, notify=notify)
    async with local_repository(home) as repo:
        backends = secret_backends(home, repo, ring)
        resolver = SecretResolver(backends)
        store = next((b for _, b in backends if isinstance(b, SecretStore)), None)
        if store is None:
            store = SecretStore(repo, ring)

        async def audit(execution_id: str, task_id: str | None, namespace: str, name: str) -> None:
            await store.record_read(namespace, name, execution_id=execution_id, task_id=task_id)

        host = plugin_host()
        # Plugins open their shared clients/pools here and close them in plait_shutdown.
        await host.startup({"home": str(home.root)})
        try:
            runner = Runner(
                repo,
                host,
                LocalStorageBackend(home.storage),
                secrets=resolver.get,
                on_log=on_log,
                on_step=on_step,
                on_secret_read=audit,
                kv=KVStore(repo),
                namespace_files=NamespaceFileStore(repo),
                key_ring=ring,
            )
            settle_heap()  # start-up is done (see plait._entry)
            try:
                yield runner
            finally:
                await runner.close()
        finally:
            await host.shutdown()
            await resolver.close()
