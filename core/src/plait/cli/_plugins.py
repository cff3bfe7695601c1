"""``plait plugins``: what is installed, and the reference of each type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from packaging.utils import canonicalize_name
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
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    default=None,
    help="The version of the type (the latest when omitted).",
)
def doc(type_name: str, as_json: bool, version: int | None) -> None:
    """Show the reference of a task or trigger TYPE (markdown from its schema)."""
    from plait_sdk import type_schema

    from plait.plugins import UnknownVersion
    from plait.reference import type_markdown
    from plait.runtime import plugin_host

    host = plugin_host()
    try:
        info = host.registry.resolve(type_name, version)
    except UnknownVersion as error:
        raise UserError(str(error), field="--version") from None
    if info is None:
        hint = host.registry.suggest(type_name)
        raise UserError(
            f"unknown type '{type_name}'" + (f"; did you mean '{hint}'?" if hint else ""),
            field="TYPE",
        )
    if as_json:
        click.echo(json.dumps(type_schema(info.cls), indent=2))
    else:
        click.echo(type_markdown(info, host.registry.versions(info.name)))


@plugins.command("search")
@click.argument("word", default="")
@click.option(
    "--catalogue",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The catalogue file (default: $PLAIT_CATALOGUE, or the catalogue shipped with Plait).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def search(word: str, catalogue: Path | None, as_json: bool) -> None:
    """Find plugin packages in the catalogue by WORD: name, summary, tag, type or alias."""
    from plait.catalogue import load_catalogue
    from plait.catalogue import search as find
    from plait.plugins import installed_distributions as installed

    found = find(load_catalogue(catalogue), word)
    present = installed()
    rows: list[dict[str, Any]] = [
        {
            "name": m.package.name,
            "version": m.package.version,
            "summary": m.package.summary,
            "tags": m.package.tags,
            "types": m.types,
            "installed": present.get(canonicalize_name(m.package.name), (None, None))[1],
        }
        for m in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no plugin package matches '{word}'")
        return
    table = Table(title=f"Plugin packages matching '{word}'" if word else "Plugin packages")
    for column in ("package", "version", "summary", "matching types", "installed"):
        table.add_column(column, overflow="fold")
    for m in found:
        version = present.get(canonicalize_name(m.package.name), ("", "-"))[1]
        cells = (m.package.name, m.package.version, m.package.summary, "\n".join(m.types) or "-")
        table.add_row(*(escape(c) for c in (*cells, version)))
    Console(soft_wrap=False, width=max(Console().width, 140)).print(table)


@plugins.command("install")
@click.argument("name")
@click.option("--index", "index_url", default=None, help="Install from this package index URL.")
@click.option(
    "--find-links",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Install from the wheels in this folder (alone: without any index).",
)
def install(name: str, index_url: str | None, find_links: Path | None) -> None:
    """Install the plugin distribution NAME (pip requirement syntax) and load it.

    The plugin is loaded in a fresh process; when it fails to load it is reported and removed
    again, with what the same install added, so nothing is left half-installed.
    """
    from plait.plugins import Installer

    result = Installer(index_url=index_url, find_links=find_links).install(name)
    if not result.ok:
        if result.already_there:
            undone = "it was installed before this command and is left as it was"
        elif result.rolled_back:
            undone = "it was uninstalled again"
        else:
            undone = "it could NOT be fully removed again"
        raise UserError(
            f"{result.distribution} {result.version} does not load; {undone}:\n"
            + "\n".join(f"  {p}" for p in result.problems)
        )
    extra = len([n for n in result.added if n != canonicalize_name(result.distribution)])
    click.echo(
        f"installed {result.distribution} {result.version}"
        + (f" (and {extra} dependencies)" if extra else "")
    )
    for record in result.plugins:
        types = ", ".join(record["types"]) or "no types"
        click.echo(f"  plugin {record['name']}: {record['status']} ({types})")
    click.echo("restart a running server to load it there")


@plugins.command("uninstall")
@click.argument("name")
def uninstall(name: str) -> None:
    """Uninstall the plugin distribution NAME (its dependencies stay)."""
    from plait.plugins import Installer

    dist, version = Installer().uninstall(name)
    click.echo(f"uninstalled {dist} {version}")
