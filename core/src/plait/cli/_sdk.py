"""``plait sdk``: start a plugin distribution, keep its reference page current."""

from __future__ import annotations

from pathlib import Path

import click
from plait_sdk import UserError

from plait.cli._app import cli


@cli.group()
def sdk() -> None:
    """Tools for plugin authors: scaffold a plugin, generate its reference."""


@sdk.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write it (default: ./plait-NAME); must not exist or be empty.",
)
def new(name: str, directory: Path | None) -> None:
    """Create plugin distribution NAME: a task, a polling trigger, tests, docs and CI."""
    from plait.scaffold import names_for, new_plugin

    target = new_plugin(name, directory)
    names = names_for(name)
    click.echo(f"created {names.dist} in {target}")
    click.echo(f"  types: {names.short}.Greet (task), {names.short}.NewFiles (trigger)")
    click.echo("next:")
    click.echo(f"  cd {target}")
    click.echo('  pip install -e ".[test]" && pytest && plait plugins list')


@sdk.command("reference")
@click.argument("distribution")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write it here.")
@click.option(
    "--check",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Exit 1 when this file is not the current reference (CI).",
)
def reference(distribution: str, output: Path | None, check: Path | None) -> None:
    """Print the reference page of an installed DISTRIBUTION's task and trigger types."""
    from plait.runtime import plugin_host
    from plait.scaffold import reference_page

    host = plugin_host()
    infos = [i for i in host.registry if i.origin.distribution == distribution]
    if not infos:
        known = sorted({i.origin.distribution for i in host.registry})
        raise UserError(
            f"no task or trigger types from distribution '{distribution}' are loaded "
            f"(installed: {', '.join(known)}); see `plait plugins list`",
            field="DISTRIBUTION",
        )
    page = reference_page(distribution, infos)
    if check is not None:
        current = check.read_text(encoding="utf-8") if check.exists() else None
        if current != page:
            raise UserError(
                f"{check} is not the current reference of {distribution}; regenerate it with "
                f"`plait sdk reference {distribution} --output {check}`"
            )
        click.echo(f"{check} is current")
    elif output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(page, nl=False)
