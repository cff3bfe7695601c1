"""``plait kv``: the namespaced key-value store of the local home."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from plait_sdk import UserError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from plait.cli._app import cli, err_console
from plait.cli._run import home_option
from plait.cli._terminal import printable

T = TypeVar("T")


def _with_kv(home: Path | None, action: Callable[[Any], Awaitable[T]]) -> T:
    from plait.kv import KVStore
    from plait.local import LocalHome, local_repository

    async def go() -> T:
        async with local_repository(LocalHome.resolve(home)) as repo:
            return await action(KVStore(repo))

    return asyncio.run(go())


@cli.group()
def kv() -> None:
    """The key-value store: typed values by namespace, with optional expiry."""


@kv.command("set")
@click.argument("namespace")
@click.argument("key")
@click.argument("value")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]),
    help="The value's type (default: STRING; JSON parses VALUE).",
)
@click.option("--ttl", help="Expire after this ISO-8601 duration (e.g. PT1H).")
@home_option
def set_value(
    namespace: str, key: str, value: str, kind: str | None, ttl: str | None, home: Path | None
) -> None:
    """Store VALUE under NAMESPACE/KEY."""
    from plait.flows import Input, InputError, InputType, coerce_value

    expires = None
    if ttl:
        try:
            expires = coerce_value(Input(id="ttl", type=InputType.DURATION), ttl)
        except InputError as error:
            raise UserError(f"--ttl: {error}") from None
    _with_kv(
        home, lambda store: store.set(namespace, key, value, type=kind or "STRING", ttl=expires)
    )
    err_console.print(printable(f"stored {namespace}/{key}"), markup=False)


@kv.command("get")
@click.argument("namespace")
@click.argument("key")
@home_option
def get_value(namespace: str, key: str, home: Path | None) -> None:
    """Print the value of NAMESPACE/KEY as JSON."""
    found = _with_kv(home, lambda store: store.entry(namespace, key))
    if found is None:
        raise UserError(f"no key {namespace}/{key}")
    from plait.kv import plain_value

    value = plain_value(found[1])
    if found[0] == "NUMBER" and isinstance(value, float) and value.is_integer():
        value = int(value)  # NUMBER 42 is stored as 42.0: print it as it was given
    click.echo(json.dumps(value))


@kv.command("list")
@click.argument("namespace")
@click.option("--prefix", default="")
@home_option
def list_keys(namespace: str, prefix: str, home: Path | None) -> None:
    """The live keys of NAMESPACE with their types."""
    rows = _with_kv(home, lambda store: store.keys(namespace, prefix))
    table = Table()
    for column in ("key", "type", "updated"):
        table.add_column(column)
    for key, kind, updated in rows:
        table.add_row(Text(printable(key)), kind, updated.strftime("%Y-%m-%d %H:%M:%S"))
    Console().print(table)


@kv.command("delete")
@click.argument("namespace")
@click.argument("key")
@home_option
def delete_value(namespace: str, key: str, home: Path | None) -> None:
    """Delete NAMESPACE/KEY."""
    if not _with_kv(home, lambda store: store.delete(namespace, key)):
        raise UserError(f"no key {namespace}/{key}")
    err_console.print(printable(f"deleted {namespace}/{key}"), markup=False)
