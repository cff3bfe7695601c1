"""``plait secrets``: the encrypted secret store of the local home (values never on argv)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from plait_sdk import UserError
from rich.console import Console
from rich.table import Table

from plait.cli._app import cli, err_console, notify
from plait.cli._run import home_option

T = TypeVar("T")


def _with_store(home: Path | None, action: Callable[..., Awaitable[T]], *, create: bool) -> T:
    from plait.local import LocalHome, local_repository
    from plait.secrets import SecretStore

    local = LocalHome.resolve(home)

    async def go() -> T:
        ring = local.key_ring(create=create, notify=notify)
        async with local_repository(local) as repo:
            store = SecretStore(repo, ring, reload=lambda: local.key_ring(create=False))
            return await action(store, local)

    return asyncio.run(go())


@cli.group()
def secrets() -> None:
    """Secrets encrypted at rest (AES-256-GCM) in the local store; values are never shown."""


@secrets.command("set")
@click.argument("namespace")
@click.argument("name")
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Read the value (bytes, as is) from a file.",
)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input.")
# Caught only to say why it is refused (click's own message is "unexpected extra argument").
@click.argument("extra", nargs=-1, expose_value=True, metavar="")
@home_option
def set_secret(
    namespace: str,
    name: str,
    from_file: Path | None,
    from_stdin: bool,
    extra: tuple[str, ...],
    home: Path | None,
) -> None:
    """Create or replace NAMESPACE/NAME; the value comes from a prompt, stdin or a file."""
    if extra:
        raise UserError(
            "a secret value is never taken from the command line (it would stay in the shell "
            f"history and the process list): run `plait secrets set {namespace} {name}` and type "
            "it at the prompt, or pipe it in on stdin, or use --from-file PATH"
        )
    if from_file is not None:
        value: bytes = from_file.read_bytes()
    elif from_stdin or not sys.stdin.isatty():
        value = sys.stdin.buffer.read()
        if value.endswith(b"\n") and not from_stdin:
            value = value[:-1]  # `echo secret | plait secrets set` should not store the newline
    else:
        value = click.prompt(
            f"value of {namespace}/{name}", hide_input=True, confirmation_prompt=True
        ).encode()
    if not value:
        raise UserError("refusing to store an empty secret")
    _with_store(home, lambda store, _: store.set(namespace, name, value), create=True)
    err_console.print(f"stored {namespace}/{name} ({len(value)} bytes, encrypted)", markup=False)


@secrets.command("list")
@click.argument("namespace", required=False)
@click.option("--json", "as_json", is_flag=True)
@home_option
def list_secrets(namespace: str | None, as_json: bool, home: Path | None) -> None:
    """Names, namespaces and update times (never values), optionally under NAMESPACE."""
    infos = _with_store(home, lambda store, _: store.names(namespace), create=True)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "namespace": i.namespace,
                        "name": i.name,
                        "keyId": i.key_id,
                        "updated": i.updated.isoformat(),
                    }
                    for i in infos
                ]
            )
        )
        return
    table = Table()
    for column in ("namespace", "name", "updated", "key"):
        table.add_column(column)
    for info in infos:
        table.add_row(
            info.namespace, info.name, info.updated.strftime("%Y-%m-%d %H:%M:%S"), info.key_id
        )
    Console().print(table)


@secrets.command("delete")
@click.argument("namespace")
@click.argument("name")
@home_option
def delete_secret(namespace: str, name: str, home: Path | None) -> None:
    """Delete NAMESPACE/NAME."""
    if not _with_store(home, lambda store, _: store.delete(namespace, name), create=False):
        raise UserError(f"no secret {namespace}/{name}")
    err_console.print(f"deleted {namespace}/{name}", markup=False)


@secrets.command("rotate-key")
@home_option
def rotate_key(home: Path | None) -> None:
    """Add a new primary master key and re-encrypt every value with it, online.

    The old keys stay in the key file (readers keep working meanwhile); remove one with
    ``plait secrets remove-key`` once nothing uses it.
    """
    from plait.secrets import ENV_KEY, KeyRing, MasterKey, read_key_file, write_key_file

    async def rotate(store: object, local: object) -> tuple[str, int]:
        import os

        from plait.local import LocalHome
        from plait.secrets import SecretStore

        assert isinstance(store, SecretStore)
        assert isinstance(local, LocalHome)
        if os.environ.get(ENV_KEY):
            raise UserError(
                f"the master keys come from {ENV_KEY}: put a new key first in it "
                "(comma-separated, old ones after) and run `plait secrets reseal`"
            )
        old = read_key_file(local.key_file)
        new = MasterKey.generate()
        write_key_file(local.key_file, [new, *old])
        store.ring = KeyRing([new, *old], new.id)
        return new.id, await _reseal_everything(store)

    key_id, count = _with_store(home, rotate, create=False)
    err_console.print(
        f"new primary key {key_id}; re-encrypted {count} value(s). Old keys stay in the key "
        "file until removed with `plait secrets remove-key KEY_ID`.",
        markup=False,
    )


async def _reseal_everything(store: object) -> int:
    """Re-seal the store's secrets and the sealed values of executions under the primary key."""
    from plait.engine import reseal_stored
    from plait.secrets import SecretStore

    assert isinstance(store, SecretStore)
    return await store.reseal_all() + await reseal_stored(store.repo, store.ring)


@secrets.command("reseal")
@home_option
def reseal(home: Path | None) -> None:
    """Re-encrypt every value not sealed with the primary key (after changing keys by hand)."""
    count = _with_store(home, lambda store, _: _reseal_everything(store), create=False)
    err_console.print(f"re-encrypted {count} value(s)", markup=False)


@secrets.command("remove-key")
@click.argument("key_id")
@home_option
def remove_key(key_id: str, home: Path | None) -> None:
    """Remove a master key from the key file; refused while any value is sealed with it."""
    from plait.secrets import read_key_file, write_key_file

    async def remove(store: object, local: object) -> None:
        from plait.local import LocalHome
        from plait.secrets import SecretStore

        assert isinstance(store, SecretStore)
        assert isinstance(local, LocalHome)
        keys = read_key_file(local.key_file)
        if key_id not in {k.id for k in keys}:
            raise UserError(f"no key {key_id} in {local.key_file}")
        if keys[0].id == key_id:
            raise UserError(f"{key_id} is the primary key; rotate first")
        from plait.engine import stored_keys_in_use

        in_store = (await store.keys_in_use()).get(key_id, 0)
        in_runs = (await stored_keys_in_use(store.repo)).get(key_id, 0)
        if in_store or in_runs:
            raise UserError(
                f"key {key_id} still seals {in_store + in_runs} value(s) ({in_store} secret(s) "
                f"of the store, {in_runs} in executions: SECRET inputs and values derived from "
                "secrets): run `plait secrets reseal` first"
            )
        write_key_file(local.key_file, [k for k in keys if k.id != key_id])

    _with_store(home, remove, create=False)
    err_console.print(f"removed key {key_id}", markup=False)


@secrets.command("reads")
@click.argument("execution_id", required=False)
@home_option
def reads(execution_id: str | None, home: Path | None) -> None:
    """The audit trail: which execution and task read which secret, and when."""
    found = _with_store(home, lambda store, _: store.reads(execution_id), create=False)
    table = Table()
    for column in ("time", "execution", "task", "namespace", "name"):
        table.add_column(column)
    for r in found:
        table.add_row(
            r.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            r.execution_id or "",
            r.task_id or "",
            r.namespace,
            r.name,
        )
    Console().print(table)
