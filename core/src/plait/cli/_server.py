"""``plait server local`` (the hub server) and ``plait auth token ...`` (its API tokens)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from plait.cli._app import cli, err_console, home_option, notify


@cli.group()
def server() -> None:
    """The hub server: REST API, live logs, metrics."""


@server.command("local")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080; 0: any free port).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Configuration file (default: $PLAIT_CONFIG, or ./plait.yaml if present).",
)
@click.option(
    "--deploy",
    "deploy",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Deploy these flow files or directories at start-up.",
)
@home_option
def local(
    host: str | None,
    port: int | None,
    config_file: Path | None,
    deploy: tuple[Path, ...],
    home: Path | None,
) -> None:
    """Serve the API with the embedded SQLite backend, every role in one process."""
    from plait.server import configure_logging, load_config, serve

    overrides: dict[str, object] = {"host": host, "port": port, "home": home}
    if deploy:
        overrides["deploy"] = list(deploy)
    config = load_config(config_file, overrides=overrides)
    configure_logging(config)

    def say(line: str) -> None:
        click.echo(line, err=True)

    asyncio.run(serve(config, say=say, notify=notify))


@cli.group()
def auth() -> None:
    """API tokens and users of the hub server."""


@auth.group()
def token() -> None:
    """Create, list and revoke API tokens (in the local home)."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for (ci, grafana...).")
@click.option(
    "--role", type=click.Choice(["viewer", "editor", "admin"]), default="viewer", show_default=True
)
@click.option("--namespace", help="Limit the token to this namespace and its children.")
@home_option
def create_token(name: str, role: str, namespace: str | None, home: Path | None) -> None:
    """Create a token and print it: it is shown this once (only its hash is stored)."""
    from plait.server import TokenCreate

    spec = TokenCreate.model_validate({"name": name, "role": role, "namespace": namespace})

    async def go() -> str:
        from plait.local import LocalHome, local_repository
        from plait.server import TokenStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            made = await TokenStore(repo).create(spec.name, spec.role, spec.namespace)
        return made.token or ""

    click.echo(asyncio.run(go()))
    err_console.print("the token is shown once: store it now", markup=False)


@token.command("list")
@home_option
def list_tokens(home: Path | None) -> None:
    """Tokens with their role and namespace (never the token itself)."""

    async def go() -> list[tuple[str, ...]]:
        from plait.local import LocalHome, local_repository
        from plait.server import TokenStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            found = await TokenStore(repo).list()
        return [
            (t.id, t.name, t.role, t.namespace or "*", "revoked" if t.revoked else "active")
            for t in found
        ]

    for row in asyncio.run(go()):
        click.echo("  ".join(row))


@token.command("revoke")
@click.argument("token_id")
@home_option
def revoke_token(token_id: str, home: Path | None) -> None:
    """Revoke a token by its id: refused from its next request on."""
    from plait_sdk import UserError

    async def go() -> bool:
        from plait.local import LocalHome, local_repository
        from plait.server import TokenStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            return await TokenStore(repo).revoke(token_id)

    if not asyncio.run(go()):
        raise UserError(f"no active token with id {token_id}")
    click.echo(f"revoked {token_id}")


@auth.group()
def user() -> None:
    """People who log in to the server (passwords hashed with Argon2id, in the local home)."""


@user.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["viewer", "editor", "admin"]), default="viewer", show_default=True
)
@click.option("--namespace", help="Limit the user to this namespace and its children.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
@home_option
def create_user(
    name: str, role: str, namespace: str | None, password_stdin: bool, home: Path | None
) -> None:
    """Create user NAME; the password comes from a prompt or stdin, never the command line."""

    from plait.server import TokenCreate

    spec = TokenCreate.model_validate({"name": name, "role": role, "namespace": namespace})
    password = _read_password(name, password_stdin)

    async def go() -> None:
        from plait.local import LocalHome, local_repository
        from plait.server import UserStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            await UserStore(repo).create(spec.name, spec.role, password, spec.namespace)

    asyncio.run(go())
    scope = f" limited to {spec.namespace}" if spec.namespace else ""
    err_console.print(f"created user {spec.name} ({spec.role}{scope})", markup=False)


@user.command("list")
@home_option
def list_users(home: Path | None) -> None:
    """Users with their role and namespace."""

    async def go() -> list[tuple[str, ...]]:
        from plait.local import LocalHome, local_repository
        from plait.server import UserStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            found = await UserStore(repo).list()
        return [(u.name, u.role, u.namespace or "*") for u in found]

    for row in asyncio.run(go()):
        click.echo("  ".join(row))


@user.command("delete")
@click.argument("name")
@home_option
def delete_user(name: str, home: Path | None) -> None:
    """Delete user NAME: their basic auth and sessions are refused from the next request on."""
    from plait_sdk import UserError

    async def go() -> bool:
        from plait.local import LocalHome, local_repository
        from plait.server import UserStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            return await UserStore(repo).delete(name)

    if not asyncio.run(go()):
        raise UserError(f"no user named {name}")
    click.echo(f"deleted {name}")


@user.command("password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the new password from standard input (one line)."
)
@home_option
def set_password(name: str, password_stdin: bool, home: Path | None) -> None:
    """Give user NAME a new password: every session of theirs is closed at once (on every
    server process sharing the database)."""
    from plait_sdk import UserError

    password = _read_password(name, password_stdin)

    async def go() -> bool:
        from plait.local import LocalHome, local_repository
        from plait.server import UserStore

        async with local_repository(LocalHome.resolve(home)) as repo:
            return await UserStore(repo).set_password(name, password)

    if not asyncio.run(go()):
        raise UserError(f"no user named {name}")
    click.echo(f"new password set for {name}; their sessions are closed")


def _read_password(name: str, from_stdin: bool) -> str:
    """A password from a prompt (asked twice) or one line of stdin, never the command line."""
    import sys

    from plait_sdk import UserError

    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password of {name}", hide_input=True, confirmation_prompt=True)
    if not password:
        raise UserError("refusing an empty password")
    return password
