"""``plait plugins``: what is installed, and the reference of each type."""

from __future__ import annotations

import json

import click
from plait_sdk import UserError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plait.cli._app import cli


@cli.group()
def plugins() -> None:
    """Installed plugins and their task and trigger types."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_plugins(as_json: bool) -> None:
    """List plugins: distribution, version, types, status or error."""
    from plait.runtime import plugin_host

    host = plugin_host()
    if as_json:
        data = [
            {
                "name": r.name,
                "module": r.module,
                "distribution": r.distribution,
                "version": r.version,
                "status": r.status,
                "errors": r.errors,
                "types": r.types,
                "api": r.api,
            }
            for r in host.records
        ]
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(title="Plait plugins")
    for column in ("plugin", "distribution", "version", "types", "status"):
        table.add_column(column, overflow="fold")
    for r in host.records:
        # Everything but the status colour comes from plugins: escape it, or a bracket in an
        # error ("[/etc/x.key]", "pkg[extra]") is taken for rich markup, dropped or fatal.
        status = (
            "[green]ok[/]"
            if r.status == "ok"
            else f"[red]{r.status}[/]: " + escape("; ".join(r.errors))
        )
        cells = (r.name, r.distribution, r.version, "\n".join(r.types) or "-")
        table.add_row(*map(escape, cells), status)
    Console(soft_wrap=False, width=max(Console().width, 140)).print(table)


@plugins.command("doc")
@click.argument("type_name")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON Schema instead.")
def doc(type_name: str, as_json: bool) -> None:
    """Show the reference of a task or trigger TYPE (markdown from its schema)."""
    from plait_sdk import type_schema

    from plait.reference import type_markdown
    from plait.runtime import plugin_host

    host = plugin_host()
    info = host.registry.resolve(type_name)
    if info is None:
        hint = host.registry.suggest(type_name)
        raise UserError(
            f"unknown type '{type_name}'" + (f"; did you mean '{hint}'?" if hint else ""),
            field="TYPE",
        )
    if as_json:
        click.echo(json.dumps(type_schema(info.cls), indent=2))
    else:
        click.echo(type_markdown(info))
