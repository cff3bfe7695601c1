"""The root ``plait`` command: global options and the one place user errors are printed."""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from plait_sdk import UserError, ValidationError

from plait import __version__
from plait.cli._terminal import printable

if TYPE_CHECKING:
    from rich.console import Console

#: The built-in commands and the module that defines each, imported when the command is used:
#: ``plait server local`` then imports neither the other commands nor rich (~9 MiB of an idle
#: server's memory). ``--help`` imports them all.
BUILT_IN = {
    "auth": "_server",
    "blueprints": "_blueprints",
    "executions": "_executions",
    "flows": "_flows",
    "kv": "_kv",
    "namespace": "_namespaces",
    "plugins": "_plugins",
    "run": "_run",
    "run-examples": "_run",
    "sdk": "_sdk",
    "secrets": "_secrets",
    "server": "_server",
    "triggers": "_triggers",
}
#: ``plait.cli._remote.install`` adds ``--server`` to these modules' commands (needs all three).
_REMOTE = {"_executions", "_flows", "_run"}


@cache
def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


class _LazyConsole:
    """Stands for the stderr console, made (and rich imported) when first used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_stderr_console(), name)


#: stderr console for messages; stdout stays clean for data (``--json``).
err_console = cast("Console", _LazyConsole())

home_option = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local store (default: $PLAIT_HOME or ./.plait).",
)


def load_commands(module: str) -> None:
    """Import a built-in command's module (its decorators add it to ``cli``)."""
    if module in _REMOTE:
        _load_remote()
    else:
        importlib.import_module(f"plait.cli.{module}")


@cache
def _load_remote() -> None:
    """The commands that take ``--server``, with it added (once)."""
    from plait.cli import _remote

    _remote.install()  # imports _executions, _flows and _run


class PlaitGroup(click.Group):
    """Prints a user error as one clear message (no traceback unless ``--debug``).

    Commands contributed by plugins (``register_commands``) are looked up only when a name is
    not a built-in command, or for ``--help``: ``plait --version`` and the core commands do not
    pay for plugin discovery before they need it.
    """

    def _plugin_commands(self) -> dict[str, click.Command]:
        from plait.runtime import plugin_host

        found: dict[str, click.Command] = {}
        for command, _origin in plugin_host().commands:
            if (
                isinstance(command, click.Command)
                and command.name
                and command.name not in self.commands
                and command.name not in BUILT_IN
            ):
                found[command.name] = command
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUILT_IN:
            load_commands(BUILT_IN[cmd_name])
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands().get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(BUILT_IN.values())):
            load_commands(module)
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except UserError as error:
            if _debug(ctx):
                raise
            from rich.markup import escape

            # One line per problem; a newline inside one (from a value) is escaped with the rest.
            problems = error.problems if isinstance(error, ValidationError) else [error]
            for line in map(str, problems):
                err_console.print(
                    f"[bold red]error:[/] {escape(printable(line))}", markup=True, highlight=False
                )
            # 1, or the error's own code (75: a run stopped unfinished, for `recover` to end).
            ctx.exit(getattr(error, "exit_code", 1))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            ctx.exit(130)
        except Exception as error:
            if _debug(ctx):
                raise
            from rich.markup import escape

            err_console.print(
                f"[bold red]internal error:[/] {type(error).__name__}: {escape(printable(error))}\n"
                "run again with --debug for the traceback, and please report it",
                markup=True,
            )
            ctx.exit(70)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or "--debug" in sys.argv


@click.group(cls=PlaitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="plait")
@click.option("--debug", is_flag=True, help="Show tracebacks for every error.")
def cli(debug: bool) -> None:
    """Plait: declarative YAML flows, every connector a plugin."""


def notify(message: str) -> None:
    """A one-line notice for the user (on stderr, so --json output stays clean).

    click, not rich: the server prints notices at start-up and does not import rich otherwise.
    """
    click.echo(f"{click.style('note:', fg='yellow')} {printable(message)}", err=True)
