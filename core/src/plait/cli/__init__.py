"""The ``plait`` command line (click + rich)."""

from __future__ import annotations

from plait.cli import _executions, _flows, _kv, _plugins, _run, _secrets  # noqa: F401
from plait.cli._app import cli


def main() -> None:
    """Entry point of the ``plait`` console script."""
    cli(prog_name="plait")


__all__ = ["cli", "main"]
