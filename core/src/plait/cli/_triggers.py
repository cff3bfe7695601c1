"""``plait triggers``: list the deployed flows' triggers with the trigger loop's state; disable,
enable, unlock. Against the local store, or a hub server with ``--server``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from plait_sdk import UserError
from rich.console import Console
from rich.table import Table

from plait.cli._app import cli, notify
from plait.cli._remote import Remote, server_options
from plait.cli._run import home_option


@cli.group()
def triggers() -> None:
    """Schedules, webhooks and the other triggers of the deployed flows."""


@triggers.command("list")
@click.option("--namespace", "-n", help="Only this namespace (and below).")
@click.option("--flow", "flow_id", help="Only this flow id.")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_options
def list_triggers(
    namespace: str | None,
    flow_id: str | None,
    as_json: bool,
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """Every trigger: type, disabled, next date, last tick, backfill progress, last error."""
    if server:
        params = {k: v for k, v in (("namespace", namespace), ("flowId", flow_id)) if v}

        async def remote() -> list[dict[str, Any]]:
            async with Remote(server, token) as client:
                _, body = await client.call("GET", "/triggers", params=params)
                return list(body["results"])

        found = asyncio.run(remote())
    else:
        found = asyncio.run(_local(home, lambda r, repo: _list(r, repo, namespace, flow_id)))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table()
    for column in ("flow", "trigger", "type", "state", "next", "last", "backfill", "last error"):
        table.add_column(column)
    for t in found:
        table.add_row(
            f"{t['namespace']}.{t['flowId']}",
            t["triggerId"],
            t["type"],
            "disabled" if t["disabled"] else "enabled",
            t.get("nextDate") or "",
            t.get("lastDate") or "",
            _backfill(t.get("backfill")),
            (t.get("lastError") or "")[:80],
        )
    Console().print(table)


def _backfill(b: dict[str, Any] | None) -> str:
    """A backfill's progress in a cell: ``12/31 running 2``, ``paused``, ``done``..."""
    if not b:
        return ""
    status = (
        "cancelled"
        if b["cancelled"]
        else "done"
        if b["finished"]
        else "paused"
        if b["paused"]
        else f"running {b['running']}"
    )
    return f"{b['done']}/{b['total']} {status}"


async def _list(runner: Any, repo: Any, namespace: str | None, flow_id: str | None) -> Any:
    from plait.server import trigger_list

    found = await trigger_list(runner, repo, namespace, flow_id)
    return [t.model_dump(mode="json", by_alias=True) for t in found]


async def _local(home: Path | None, action: Any) -> Any:
    from plait.local import LocalHome, local_runner

    async with local_runner(LocalHome.resolve(home), notify=notify) as runner:
        return await action(runner, runner.repo)


def _toggle(verb: str, off: bool) -> None:
    @triggers.command(verb)
    @click.argument("namespace")
    @click.argument("flow_id")
    @click.argument("trigger_id")
    @home_option
    @server_options
    def command(
        namespace: str,
        flow_id: str,
        trigger_id: str,
        home: Path | None,
        server: str | None,
        token: str | None,
    ) -> None:
        async def apply(repo: Any, found: dict[str, Any]) -> None:
            from plait.server import set_disabled

            await set_disabled(repo, namespace, flow_id, trigger_id, found["type"], off)

        _act(namespace, flow_id, trigger_id, verb, apply, home, server, token)
        click.echo(f"{namespace}.{flow_id}/{trigger_id}: {verb}d")

    command.__doc__ = f"{verb.capitalize()} one trigger (NAMESPACE FLOW_ID TRIGGER_ID)."


_toggle("disable", True)
_toggle("enable", False)


@triggers.command("unlock")
@click.argument("namespace")
@click.argument("flow_id")
@click.argument("trigger_id")
@home_option
@server_options
def unlock_trigger(
    namespace: str,
    flow_id: str,
    trigger_id: str,
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """Unlock a trigger stuck evaluating because its process died (NAMESPACE FLOW_ID
    TRIGGER_ID); a lock also expires by itself five minutes after it was taken."""

    async def apply(repo: Any, found: dict[str, Any]) -> None:
        from plait.server import unlock

        if not await unlock(repo, namespace, flow_id, trigger_id):
            raise UserError(f"trigger {namespace}.{flow_id}/{trigger_id} is not locked")

    _act(namespace, flow_id, trigger_id, "unlock", apply, home, server, token)
    click.echo(f"{namespace}.{flow_id}/{trigger_id}: unlocked")


def _act(
    namespace: str,
    flow_id: str,
    trigger_id: str,
    action: str,
    apply: Callable[[Any, dict[str, Any]], Awaitable[None]],
    home: Path | None,
    server: str | None,
    token: str | None,
) -> None:
    """``POST /triggers/{ns}/{flow}/{trigger}/{action}`` on a server, or ``apply`` to the
    trigger found in the local store (a trigger that does not exist is one clear error)."""
    if server:

        async def remote() -> None:
            async with Remote(server, token) as client:
                await client.call("POST", f"/triggers/{namespace}/{flow_id}/{trigger_id}/{action}")

        asyncio.run(remote())
        return

    async def local(runner: Any, repo: Any) -> None:
        found = await _list(runner, repo, namespace, flow_id)
        match = [t for t in found if t["triggerId"] == trigger_id]
        if not match or match[0]["namespace"] != namespace:
            raise UserError(f"trigger {namespace}.{flow_id}/{trigger_id} not found")
        await apply(repo, match[0])

    asyncio.run(_local(home, local))
