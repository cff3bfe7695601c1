"""``plait namespace files``: the namespace files of the local home, or of a server."""

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

from plait.cli._app import cli
from plait.cli._remote import Remote, server_options
from plait.cli._run import home_option
from plait.cli._terminal import printable

T = TypeVar("T")


def _local(home: Path | None, action: Callable[[Any], Awaitable[T]]) -> T:
    from plait.local import LocalHome, local_repository
    from plait.nsfiles import NamespaceFileStore

    async def go() -> T:
        async with local_repository(LocalHome.resolve(home)) as repo:
            return await action(NamespaceFileStore(repo))

    return asyncio.run(go())


def _remote(server: str, token: str | None, action: Callable[[Remote], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Remote(server, token) as client:
            return await action(client)

    return asyncio.run(go())


def _check_namespace(namespace: str) -> str:
    from plait.nsfiles import check_namespace

    return check_namespace(namespace)


def _sources(local: Path, dest: str | None) -> list[tuple[str, Path]]:
    """(namespace path, local file) of a file, or of every file under a directory."""
    from plait.nsfiles import check_path

    if local.is_dir():
        base = check_path(dest, directory=True) if dest else ""
        found = sorted(p for p in local.rglob("*") if p.is_file())
        return [
            (check_path(f"{base}/{p.relative_to(local).as_posix()}".lstrip("/")), p) for p in found
        ]
    if not local.is_file():
        raise UserError(f"no such file or directory: {local}")
    target = dest or local.name
    if target.endswith("/"):
        target += local.name
    return [(check_path(target), local)]


@cli.group()
def namespace() -> None:
    """Namespaces: their files (Kestra's namespace files)."""


@namespace.group()
def files() -> None:
    """Namespace files: code and data shared by the flows of a namespace (versioned)."""


@files.command("upload")
@click.argument("namespace_id", metavar="NAMESPACE")
@click.argument("local", type=click.Path(path_type=Path, exists=True))
@click.argument("destination", required=False)
@home_option
@server_options
def upload(
    namespace_id: str,
    local: Path,
    destination: str | None,
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """Upload LOCAL (a file, or every file of a directory) as namespace files, at DESTINATION
    (default: the file's name, or the root for a directory; a trailing `/` names a folder)."""
    from plait.limits import limits

    ns = _check_namespace(namespace_id)
    sources = _sources(local, destination)
    limit = limits().namespace_file_max_bytes
    for _path, file in sources:
        if file.stat().st_size > limit:
            raise UserError(
                f"{file}: {file.stat().st_size} bytes; namespace files are limited to {limit} "
                "(PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES)"
            )
    if server:

        async def send(client: Remote) -> list[tuple[str, int]]:
            import aiohttp

            done = []
            for path, file in sources:
                form = aiohttp.FormData()
                form.add_field("fileContent", file.read_bytes(), filename=file.name)
                _, body = await client.call(
                    "POST", f"/namespaces/{ns}/files", params={"path": "/" + path}, data=form
                )
                done.append((path, int(body.get("version", 0))))
            return done

        uploaded = _remote(server, token, send)
    else:
        contents = [(path, file.read_bytes()) for path, file in sources]

        async def store(s: Any) -> list[tuple[str, int]]:
            return [(path, await s.put(ns, path, data)) for path, data in contents]

        uploaded = _local(home, store)
    for path, version in uploaded:
        click.echo(f"uploaded {ns}:/{printable(path)} (version {version})")


@files.command("list")
@click.argument("namespace_id", metavar="NAMESPACE")
@click.argument("prefix", default="")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@home_option
@server_options
def list_files(
    namespace_id: str,
    prefix: str,
    as_json: bool,
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """The namespace files (under the folder PREFIX): path, size, version, last update."""
    ns = _check_namespace(namespace_id)
    if server:

        async def fetch(client: Remote) -> list[dict[str, Any]]:
            _, body = await client.call(
                "GET",
                f"/namespaces/{ns}/files/directory",
                params={"path": "/" + prefix.lstrip("/"), "recursive": "true"},
            )
            return [
                {
                    "path": item["path"].lstrip("/"),
                    "size": item["size"],
                    "version": item["version"],
                    "updated": item["lastModifiedTime"],
                }
                for item in body["results"]
            ]

        rows = _remote(server, token, fetch)
    else:
        from plait.nsfiles import check_path

        check_path(prefix, directory=True)

        async def read(s: Any) -> list[dict[str, Any]]:
            return [
                {
                    "path": f.path,
                    "size": f.size,
                    "version": f.version,
                    "updated": f.updated.isoformat(),
                }
                for f in await s.list(ns, prefix)
            ]

        rows = _local(home, read)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    for column in ("path", "size", "version", "updated"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            printable(row["path"]), str(row["size"]), str(row["version"]), str(row["updated"])
        )
    Console().print(table)


@files.command("delete")
@click.argument("namespace_id", metavar="NAMESPACE")
@click.argument("path")
@home_option
@server_options
def delete(
    namespace_id: str, path: str, home: Path | None, server: str | None, token: str | None
) -> None:
    """Delete the namespace file PATH (every version), or every file under the folder PATH."""
    from plait.nsfiles import check_path

    ns = _check_namespace(namespace_id)
    clean = check_path(path, directory=True)
    if not clean:
        raise UserError("refusing to delete the whole namespace: name a file or a folder")
    if server:

        async def remove(client: Remote) -> list[str]:
            _, body = await client.call(
                "DELETE", f"/namespaces/{ns}/files", params={"path": "/" + clean}
            )
            return [str(p).lstrip("/") for p in body.get("deleted", [])]

        gone = _remote(server, token, remove)
    else:
        gone = _local(home, lambda s: s.delete(ns, clean))
    if not gone:
        raise UserError(f"no namespace file {clean!r} in namespace {ns}")
    for item in gone:
        click.echo(f"deleted {ns}:/{printable(item)}")
