"""``plait flows``: validate flow files and print the flow-file JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import click
from plait_sdk import UserError

from plait.cli._app import cli, err_console
from plait.cli._terminal import printable
from plait.flows import flow_files


@cli.group()
def flows() -> None:
    """Flow files: validation and editor schema."""


@flows.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check flow files (or directories of them); print every problem as file:line:column."""
    from plait.flows import read_flow_file, validate_flow_text
    from plait.runtime import plugin_host, template_engine

    registry = plugin_host().registry
    files = flow_files(paths)
    if not files:
        raise UserError("no flow files (*.yaml, *.yml) found", file=" ".join(map(str, paths)))
    failed = 0
    for file in files:
        try:
            text = read_flow_file(file)
        except UserError as error:
            click.echo(_shown(error))
            failed += 1
            continue
        warnings: list[UserError] = []
        problems = validate_flow_text(
            text, registry=registry, file=str(file), templates=template_engine(), warnings=warnings
        )
        for warning in warnings:
            click.echo(f"warning: {_shown(warning)}")
        if problems:
            failed += 1
            for problem in problems:
                click.echo(_shown(problem))
        else:
            click.echo(f"ok {file}")
    if failed:
        err_console.print(f"{failed} of {len(files)} flow file(s) invalid", markup=False)
        raise SystemExit(1)


@flows.command("upgrade")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file needs upgrading.")
def upgrade(paths: tuple[Path, ...], check: bool) -> None:
    """Rewrite older Kestra forms in flow files to the current ones (comments and layout kept).

    taskDefaults becomes pluginDefaults, inputs' name becomes id, io.kestra.core.tasks.* types
    their io.kestra.plugin.* names, Echo a Log... the forms `plait flows validate` warns about.
    A file that does not validate is left untouched.
    """
    from plait.flows import read_flow_file, upgrade_text, validate_flow_text
    from plait.runtime import plugin_host, template_engine

    registry = plugin_host().registry
    files = flow_files(paths)
    if not files:
        raise UserError("no flow files (*.yaml, *.yml) found", file=" ".join(map(str, paths)))
    pending = 0
    for file in files:
        text = read_flow_file(file)
        # Validated first: an invalid file is reported, never half-rewritten; and the bounded
        # parser has checked the file's size and depth before ruamel.yaml reads it.
        problems = validate_flow_text(
            text, registry=registry, file=str(file), templates=template_engine()
        )
        if problems:
            for problem in problems:
                click.echo(_shown(problem))
            raise SystemExit(1)
        new, found = upgrade_text(text, lambda name: registry.resolve(name) is not None)
        for kept in (change for change in found if not change.rewritten):
            click.echo(f"warning: {file}: {kept.path_text}: {kept.message} (left as it is)")
        changes = [change for change in found if change.rewritten]
        if not changes:
            click.echo(f"up to date {file}")
            continue
        pending += 1
        for change in changes:
            what = f"{change.old} -> {change.new}" if change.note is None else "removed"
            click.echo(f"{file}: {change.path_text}: {what}")
        if not check:
            temporary = file.with_name(f".{file.name}.upgrade")
            temporary.write_text(new, encoding="utf-8")
            temporary.replace(file)  # atomic: the file is either old or upgraded, never half
            click.echo(f"upgraded {file}")
    if check and pending:
        err_console.print(f"{pending} flow file(s) use older forms", markup=False)
        raise SystemExit(1)


@flows.command("schema")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to a file.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of flow files (for editors), covering every installed type."""
    from plait.flows.schema import flow_schema
    from plait.runtime import plugin_host

    text = json.dumps(flow_schema(plugin_host().registry), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        err_console.print(f"wrote {output}", markup=False)


@flows.command("deploy")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local store (default: $PLAIT_HOME or ./.plait).",
)
def deploy(paths: tuple[Path, ...], home: Path | None) -> None:
    """Validate flow files and store each as a new revision (unchanged sources keep theirs).

    Nothing is stored unless every file is valid.
    """
    import asyncio

    from plait.flows import parse, read_flow_file, validate_flow_text
    from plait.local import LocalHome, local_repository
    from plait.runtime import plugin_host, template_engine

    files = flow_files(paths)
    if not files:
        raise UserError("no flow files (*.yaml, *.yml) found", file=" ".join(map(str, paths)))
    sources = [(file, read_flow_file(file)) for file in files]
    problems = [
        p
        for file, text in sources
        for p in validate_flow_text(
            text, registry=plugin_host().registry, file=str(file), templates=template_engine()
        )
    ]
    if problems:
        for problem in problems:
            click.echo(_shown(problem))
        err_console.print("nothing deployed: fix the problems above", markup=False)
        raise SystemExit(1)

    async def store() -> list[tuple[Path, str, int]]:
        done = []
        async with local_repository(LocalHome.resolve(home)) as repo:
            for file, text in sources:
                data = parse(text, file=str(file)).data
                revision = await repo.save_flow(data["namespace"], data["id"], text)
                done.append((file, f"{data['namespace']}.{data['id']}", revision.revision))
        return done

    for file, uid, revision in asyncio.run(store()):
        click.echo(f"{uid} revision {revision} ({file})")


@flows.command("list")
@click.option("--namespace", "-n", help="Only this namespace (and its children).")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local store (default: $PLAIT_HOME or ./.plait).",
)
def list_flows(namespace: str | None, home: Path | None) -> None:
    """Deployed flows with their latest revision."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from plait.local import LocalHome, local_repository

    async def fetch() -> list[tuple[str, str, int, str]]:
        async with local_repository(LocalHome.resolve(home)) as repo:
            found = await repo.list_flows(namespace)
            return [
                (f.namespace, f.flow_id, f.revision, f.created.strftime("%Y-%m-%d %H:%M:%S"))
                for f in found
            ]

    table = Table()
    for column in ("namespace", "id", "revision", "updated"):
        table.add_column(column)
    for row in asyncio.run(fetch()):
        table.add_row(row[0], row[1], str(row[2]), row[3])
    Console().print(table)


def _shown(problem: object) -> str:
    """A validation problem for the terminal: its lines kept, control characters escaped."""
    return "\n".join(printable(line) for line in str(problem).splitlines())
