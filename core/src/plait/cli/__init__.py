"""The ``plait`` command line (click + rich)."""

from __future__ import annotations

import logging
import os
import sys

# The commands' modules are imported when their command is used (plait.cli._app.BUILT_IN).
from plait.cli._app import BUILT_IN, cli, load_commands
from plait.runtime import settle_heap


def main() -> None:
    """Entry point of the ``plait`` console script."""
    # The command's module is imported with the rest of start-up (the collector still off), then
    # the imports are frozen and the collector runs for the command itself (a long validation
    # would otherwise keep all its cyclic garbage). See plait._entry.
    name = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if name in BUILT_IN:
        load_commands(BUILT_IN[name])
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
