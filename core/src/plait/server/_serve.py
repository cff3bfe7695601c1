"""Running the server: open the local home, recover, deploy, listen, shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from plait_sdk import UserError

from plait.server._app import build_app
from plait.server._auth import TokenStore
from plait.server._config import ServerConfig
from plait.server._hub import Hub

log = logging.getLogger("plait.server")


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the error id / execution id
    when the message carries one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(config: ServerConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("plait.server")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


async def serve(
    config: ServerConfig,
    *,
    say: Callable[[str], None],
    notify: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``); running executions get ``shutdown_grace``
    seconds, the rest stay in the database for the next start's recovery."""
    from plait.local import LocalHome, local_runner

    hub = Hub(config)
    home = LocalHome.resolve(config.home)
    sources = await asyncio.to_thread(_read_flows, config.deploy)
    await asyncio.to_thread(_migrate_apart, home)
    async with local_runner(home, on_log=hub.on_log, on_step=hub.on_step, notify=notify) as runner:
        from plait.storage import SqlRepository

        if not isinstance(runner.repo, SqlRepository):  # pragma: no cover - local is SQL
            raise UserError("the server needs the SQL repository")
        tokens = TokenStore(runner.repo)
        hub.attach(runner, tokens)
        for file, text in sources:
            await runner.deploy(text, file=str(file))
        first_token = None
        if config.bootstrap_token and not await tokens.list():
            first_token = await tokens.create("admin", "admin")
        app = build_app(hub)
        app_runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
            # A connection still waiting for a complete request after this is closed: the
            # headers of a slow client, or an idle keep-alive connection.
            keepalive_timeout=config.client_timeout or 3630,
        )
        await app_runner.setup()
        site = web.TCPSite(app_runner, config.host, config.port)
        await site.start()
        port = _bound_port(app_runner, config.port)
        # Executions left unfinished by a previous process (crash, kill -9), each recovered in
        # a task of its own; the children of paused parents too (the engine's second pass).
        # An execution the API has started meanwhile is held by this runner: never taken twice.
        recovery = await runner.recover_unfinished(spawn=hub.spawn)
        from plait.server._scheduler import Scheduler

        stop_triggers = asyncio.Event()
        trigger_loop = asyncio.create_task(
            Scheduler(runner, runner.repo, hub.spawn).run(stop_triggers), name="trigger loop"
        )
        _give_back_memory()
        url = f"http://{config.host}:{port}"
        say(f"Plait server listening on {url}  (home: {home.root})")
        say(f"web UI: {url}/ui")
        if recovery.started:
            say(f"recovering {len(recovery.started)} unfinished execution(s)")
        if first_token is not None:
            say(f"admin token (shown once, keep it): {first_token.token}")
        shown = first_token.token if first_token is not None else "<token>"
        say(
            f"try: curl -X POST -H 'Authorization: Bearer {shown}' "
            f"-F name=Ada '{url}/api/v1/executions/examples/hello?wait=true'"
        )
        log.info("listening on %s", url)
        done = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        try:
            await done.wait()
            stop_triggers.set()
            await trigger_loop
            say("shutting down: no new executions; waiting for running ones")
            await hub.drain(config.shutdown_grace)
        finally:
            trigger_loop.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await app_runner.cleanup()
        say("stopped")


def _give_back_memory() -> None:
    """Start-up (imports, plugin loading, the OpenAPI document) freed a lot of what it made,
    but glibc's allocator keeps freed pages for reuse: hand them back to the system once, so an
    idle server's resident memory is what it really uses (~3 MiB less, measured)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's included


def _migrate_apart(home: Any) -> None:
    """A new or older database is migrated by a child process, so that Alembic and Mako never
    load into the server (they would stay in its memory for its whole life)."""
    from plait.storage import upgrade_apart

    home.secure()
    upgrade_apart(home.database)


def _bound_port(app_runner: web.AppRunner, wanted: int) -> int:
    for address in app_runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return wanted


def _read_flows(paths: list[Path]) -> list[tuple[Path, str]]:
    from plait.flows import flow_files

    return [(file, file.read_text("utf-8")) for file in flow_files(tuple(paths))]
