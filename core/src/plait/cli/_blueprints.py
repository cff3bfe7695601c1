"""``plait blueprints``: list, show and use the blueprints of the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import click
from plait_sdk import UserError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plait.cli._app import cli, err_console
from plait.cli._remote import Remote, _sync, deploy, server_options


@cli.group()
def blueprints() -> None:
    """Ready flows with metadata: deploy one as a flow, or call it as a Subflow."""


@blueprints.command("list")
@click.argument("word", required=False)
@click.option("--tag", "-t", help="Only blueprints with this tag.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_blueprints(word: str | None, tag: str | None, as_json: bool) -> None:
    """The catalogue (the core's library and the installed plugins'), optionally searched."""
    from plait.blueprints import search, summarize
    from plait.runtime import plugin_host

    found = [summarize(e) for e in search(plugin_host().registry, tag, word)]
    if as_json:
        click.echo(json.dumps([s.dump() for s in found], indent=2))
        return
    if not found:
        err_console.print("no blueprint matches", markup=False)
        return
    table = Table()
    for column in ("id", "title", "tags", "version"):
        table.add_column(column, overflow="fold")
    for s in found:
        table.add_row(*map(escape, (s.id, s.title, ", ".join(s.tags), s.version)))
    Console(soft_wrap=False, width=max(Console().width, 120)).print(table)


@blueprints.command("show")
@click.argument("blueprint_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def show(blueprint_id: str, as_json: bool) -> None:
    """A blueprint's description, inputs, outputs, example call and flow YAML."""
    from plait.blueprints import describe, find
    from plait.runtime import plugin_host

    detail = describe(find(plugin_host().registry, blueprint_id))
    if as_json:
        click.echo(json.dumps(detail.dump(), indent=2))
        return
    lines = [f"{detail.id} {detail.version}: {detail.title}", ""]
    lines += [detail.description, ""]
    lines.append("tags: " + (", ".join(detail.tags) or "-"))
    needs = ", ".join(f"{d}>={v}" for d, v in sorted(detail.plugins.items()))
    lines.append(f"plugins: {needs or '-'}  (from {detail.distribution})")
    lines += ["", "inputs:"]
    for i in detail.inputs:
        flag = "required" if i.required else f"default {json.dumps(i.defaults)}"
        lines.append(f"  {i.id} ({i.type}, {flag}): {i.description}")
    lines += ["", "outputs:"]
    lines += [f"  {o.id} ({o.type}): {o.description}" for o in detail.outputs] or ["  -"]
    lines += ["", "as a subflow:", *("  " + x for x in detail.example.splitlines())]
    lines += ["", "flow:", detail.flow.rstrip()]
    click.echo("\n".join(lines))


@blueprints.command("use")
@click.argument("blueprint_id", metavar="ID")
@click.option("--namespace", "-n", required=True, help="The namespace of the new flow.")
@click.option("--id", "flow_id", help="The new flow's id (default: the blueprint's name).")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the flow YAML to this file (to edit it) instead of deploying it.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local store (default: $PLAIT_HOME or ./.plait).",
)
@server_options
def use(
    blueprint_id: str,
    namespace: str,
    flow_id: str | None,
    out: Path | None,
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """Deploy a blueprint as a flow of NAMESPACE (locally, or on --server), or write it out."""
    from plait.blueprints import find, instantiate
    from plait.flows import validate_flow_text
    from plait.runtime import plugin_host, template_engine

    registry = plugin_host().registry
    entry = find(registry, blueprint_id)
    text = instantiate(entry.blueprint, namespace, flow_id)
    uid = f"{namespace}.{flow_id or blueprint_id.split('.', 1)[1]}"
    if out is not None:
        if server:
            raise UserError("give --out or --server, not both")
        if out.exists():
            raise UserError("already exists: not overwritten", file=str(out))
        out.write_text(text, "utf-8")
        err_console.print(f"wrote {out} (flow {uid})", markup=False)
        return
    if server:
        source = Path(f"blueprint:{blueprint_id}")

        async def go() -> list[tuple[str, int]]:
            async with Remote(server, token) as remote:
                return await deploy(remote, [(source, text)])

        for deployed, revision in _sync(go()):
            click.echo(f"{deployed} revision {revision} (blueprint {blueprint_id})")
        return
    problems = validate_flow_text(
        text, registry=registry, file=f"blueprint:{blueprint_id}", templates=template_engine()
    )
    if problems:
        raise UserError("\n".join(map(str, problems)))

    import asyncio

    from plait.local import LocalHome, local_repository

    async def store() -> int:
        async with local_repository(LocalHome.resolve(home)) as repo:
            saved = await repo.save_flow(namespace, uid.rsplit(".", 1)[1], text)
            return saved.revision

    revision = asyncio.run(store())
    click.echo(f"{uid} revision {revision} (blueprint {blueprint_id})")
