"""The root ``plait`` command: global options and the one place user errors are printed."""

from __future__ import annotations

import sys
from typing import Any

import click
from plait_sdk import UserError, ValidationError
from rich.console import Console
from rich.markup import escape

from plait import __version__
from plait.cli._terminal import printable

#: stderr console for messages; stdout stays clean for data (``--json``).
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
            ):
                found[command.name] = command
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands().get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except UserError as error:
            if _debug(ctx):
                raise
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
    """A one-line notice for the user (on stderr, so --json output stays clean)."""
    err_console.print(f"[yellow]note:[/] {escape(printable(message))}", markup=True)
