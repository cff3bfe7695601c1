"""The ``plait`` command line (click + rich)."""

from __future__ import annotations

import logging
import os
import sys

from plait.cli import (  # noqa: F401
    _blueprints,
    _executions,
    _flows,
    _kv,
    _namespaces,
    _plugins,
    _remote,
    _run,
    _sdk,
    _secrets,
    _server,
    _triggers,
)
from plait.cli._app import cli
from plait.runtime import settle_heap

_remote.install()  # --server on the commands that can talk to a hub server


def main() -> None:
    """Entry point of the ``plait`` console script."""
    # The imports are done: freeze them and let the collector run for the command itself (a
    # long validation would otherwise keep all its cyclic garbage). See plait._entry.
    settle_heap()
    try:
        cli(prog_name="plait")
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    _exit_now(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what the interpreter does with a message
    return 1


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown.

    By the time a command returns, everything it opened is closed (the database, the plugins'
    shutdown hooks, the event loop and its threads), so what is left is freeing ~1,000 modules
    and their objects one by one: about 0.1 s of every `plait` call, a quarter of a one-task
    `plait run`. Output is flushed and logging shut down first, as a normal exit would.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe (`plait ... | head`)
            code = code or 1
    logging.shutdown()
    os._exit(code)


__all__ = ["cli", "main"]
