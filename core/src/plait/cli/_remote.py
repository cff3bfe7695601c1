"""The CLI against a hub server (``--server URL`` or ``$PLAIT_SERVER``, with ``--token`` or
``$PLAIT_TOKEN``): deploy and sync flows, list, show and follow executions, run a flow there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from plait_sdk import UserError

F = TypeVar("F", bound=Callable[..., Any])


def server_options(command: F) -> F:
    """``--server`` and ``--token`` (also from ``$PLAIT_SERVER`` / ``$PLAIT_TOKEN``)."""
    command = click.option(
        "--token",
        envvar="PLAIT_TOKEN",
        help="API token for --server (default: $PLAIT_TOKEN).",
    )(command)
    command = click.option(
        "--server",
        envvar="PLAIT_SERVER",
        help="Talk to this Plait server (http://host:port) instead of the local store "
        "(default: $PLAIT_SERVER).",
    )(command)
    return command


class Remote:
    """A small client of the server's API; every error is one clear :class:`UserError`."""

    def __init__(self, server: str, token: str | None) -> None:
        if not token:
            raise UserError("--server needs a token: --token or $PLAIT_TOKEN")
        self.base = server.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def __aenter__(self) -> Remote:
        import aiohttp

        self.session = aiohttp.ClientSession(
            headers=self.headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> tuple[int, Any]:
        import aiohttp

        try:
            async with self.session.request(method, self.base + path, **kwargs) as response:
                text = await response.text()
                body = json.loads(text) if "json" in response.content_type else text
                if response.status not in ok:
                    raise UserError(_message(response.status, body))
                return response.status, body
        except aiohttp.ClientError as error:
            raise UserError(f"cannot reach the server {self.base}: {error}") from None

    async def events(self, path: str) -> AsyncIterator[tuple[str, str]]:
        """(event, data) of a Server-Sent Events stream until it ends."""
        import aiohttp

        try:
            async with self.session.get(self.base + path) as response:
                if response.status != 200:
                    raise UserError(_message(response.status, await response.text()))
                event, data = "message", list[str]()
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
        except aiohttp.ClientError as error:
            raise UserError(f"lost the server {self.base}: {error}") from None


def _message(status: int, body: Any) -> str:
    if isinstance(body, dict) and "message" in body:
        problems = body.get("problems") or []
        lines = [str(p) for p in problems if str(p) != body["message"]]
        return "\n".join([f"server: {body['message']} (HTTP {status})", *lines])
    return f"server answered HTTP {status}: {str(body)[:300]}"


async def deploy(remote: Remote, sources: list[tuple[Path, str]]) -> list[tuple[str, int]]:
    """Create or update each flow (a new revision only when its source changed)."""

    done = []
    for file, text in sources:
        status, body = await remote.call(
            "POST",
            "/flows",
            data=text.encode(),
            headers={"Content-Type": "application/x-yaml"},
            ok=(200, 409, 422),
        )
        if status == 422:
            problems = [p.replace("flow.yaml", str(file), 1) for p in body.get("problems", [])]
            raise UserError("\n".join(problems) or f"{file}: {body.get('message')}")
        if status == 409:
            from plait.flows import safe_load

            data = safe_load(text)
            uid = f"{data['namespace']}/{data['id']}"
            _, current = await remote.call("GET", f"/flows/{uid}")
            _, body = await remote.call(
                "PUT",
                f"/flows/{uid}?revision={current['revision']}",
                data=text.encode(),
                headers={"Content-Type": "application/x-yaml"},
            )
        done.append((f"{body['namespace']}.{body['id']}", int(body["revision"])))
    return done


async def sync(
    remote: Remote, sources: list[tuple[Path, str]], delete: bool
) -> tuple[list[tuple[str, int]], list[str]]:
    """Deploy every flow of the directory; with ``delete``, delete the server's others (those
    the token can see)."""
    deployed = await deploy(remote, sources)
    removed: list[str] = []
    if delete:
        keep = {uid for uid, _ in deployed}
        _, listed = await remote.call("GET", "/flows/search")
        for flow in listed["results"]:
            uid = f"{flow['namespace']}.{flow['id']}"
            if uid not in keep:
                await remote.call("DELETE", f"/flows/{flow['namespace']}/{flow['id']}")
                removed.append(uid)
    return deployed, removed


# -- the commands that take --server ------------------------------------------------------------


def with_server(command: click.Command, remote: Callable[..., Any], *extra: click.Option) -> None:
    """Give a local command ``--server``/``--token`` (and ``extra`` options): with a server it
    runs ``remote(server, token, **params)`` instead of its local body."""
    original = command.callback
    assert original is not None
    probe = server_options(lambda **_: None)
    command.params.extend([*getattr(probe, "__click_params__", []), *extra])

    def callback(**params: Any) -> Any:
        server, token = params.pop("server", None), params.pop("token", None)
        if server:
            return remote(server, token, **params)
        for option in extra:
            if option.name and params.pop(option.name, None):
                raise UserError(f"--{option.name} works with --server only")
        return original(**params)

    command.callback = callback


def _sync(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def _sources(paths: tuple[Path, ...]) -> list[tuple[Path, str]]:
    from plait.flows import flow_files

    files = flow_files(paths)
    if not files:
        raise UserError("no flow files (*.yaml, *.yml) found", file=" ".join(map(str, paths)))
    return [(file, file.read_text("utf-8")) for file in files]


def remote_deploy(server: str, token: str | None, paths: tuple[Path, ...], **_: Any) -> None:
    sources = _sources(paths)

    async def go() -> list[tuple[str, int]]:
        async with Remote(server, token) as remote:
            return await deploy(remote, sources)

    for uid, revision in _sync(go()):
        click.echo(f"{uid} revision {revision}")


def remote_list(
    server: str,
    token: str | None,
    namespace: str | None,
    flow_id: str | None,
    states: tuple[str, ...],
    limit: int,
    as_json: bool,
    **_: Any,
) -> None:
    params: list[tuple[str, str]] = [("size", str(min(max(limit, 1), 500)))]
    params += [("namespace", namespace)] if namespace else []
    params += [("flowId", flow_id)] if flow_id else []
    params += [("state", s) for s in states]

    async def go() -> Any:
        async with Remote(server, token) as remote:
            return (await remote.call("GET", "/executions/search", params=params))[1]

    found = _sync(go())["results"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for e in found:
        click.echo(f"{e['id']}  {e['namespace']}.{e['flowId']}  {e['state']['current']}")


def _print_execution(execution: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(execution, indent=2))
        return
    click.echo(
        f"{execution['id']}  {execution['namespace']}.{execution['flowId']}  "
        f"{execution['state']['current']}"
    )
    for run in execution["taskRunList"]:
        click.echo(f"  {run['taskId']}  {run['state']['current']}")
    if execution.get("outputs"):
        click.echo(f"  outputs: {json.dumps(execution['outputs'])}")
    if execution.get("error"):
        click.echo(f"  error: {execution['error']}")


def remote_show(server: str, token: str | None, execution_id: str, as_json: bool, **_: Any) -> None:
    async def go() -> Any:
        async with Remote(server, token) as remote:
            return (await remote.call("GET", f"/executions/{execution_id}"))[1]

    _print_execution(_sync(go()), as_json)


async def _follow(
    remote: Remote, execution_id: str, query: str = "", *, until_paused: bool = True
) -> str:
    """Print the log lines as they come until the execution ends (or pauses); its state."""
    final = ""
    async for event, data in remote.events(f"/logs/{execution_id}/follow{query}"):
        if event == "end":
            final = data
        elif event == "state":
            if data == "PAUSED" and until_paused:
                return data
        else:
            line = json.loads(data)
            task = f" {line['taskId']}" if line.get("taskId") else ""
            click.echo(f"{line['timestamp'][11:23]} {line['level']:<5}{task} {line['message']}")
    return final


def remote_logs(
    server: str,
    token: str | None,
    execution_id: str,
    task_id: str | None,
    level: str | None,
    as_json: bool,
    follow: bool = False,
    **_: Any,
) -> None:
    query = "&".join(
        f"{k}={v}" for k, v in (("taskId", task_id), ("minLevel", level)) if v is not None
    )
    suffix = f"?{query}" if query else ""

    async def go() -> Any:
        async with Remote(server, token) as remote:
            if follow:
                return await _follow(remote, execution_id, suffix, until_paused=False)
            return (await remote.call("GET", f"/logs/{execution_id}{suffix}"))[1]

    found = _sync(go())
    if follow:
        return
    if as_json:
        click.echo(json.dumps(found))
        return
    for line in found:
        click.echo(f"{line['timestamp'][11:23]} {line['level']:<5} {line['message']}")


def remote_kill(server: str, token: str | None, execution_id: str, **_: Any) -> None:
    async def go() -> Any:
        async with Remote(server, token) as remote:
            return (await remote.call("DELETE", f"/executions/{execution_id}/kill"))[1]

    execution = _sync(go())
    click.echo(f"{execution['id']}: {execution['state']['current']}", err=True)


def remote_pause(
    server: str, token: str | None, execution_id: str, wait: bool = False, **_: Any
) -> None:
    async def go() -> Any:
        async with Remote(server, token) as remote:
            execution = (await remote.call("POST", f"/executions/{execution_id}/pause"))[1]
            if wait:
                await _wait(remote, execution_id)
                execution = (await remote.call("GET", f"/executions/{execution_id}"))[1]
            return execution

    execution = _sync(go())
    current = execution["state"]["current"]
    pending = current not in ("PAUSED", "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")
    note = " (pause requested: it pauses once its running tasks end)" if pending else ""
    click.echo(f"{execution['id']}: {current}{note}", err=True)


def remote_resume(
    server: str, token: str | None, execution_id: str, inputs: tuple[str, ...], **_: Any
) -> None:
    from plait.cli._run import parse_pairs

    values = parse_pairs(inputs, "input")

    async def go() -> Any:
        async with Remote(server, token) as remote:
            await remote.call("POST", f"/executions/{execution_id}/resume", json={"inputs": values})
            await _follow(remote, execution_id)
            return (await remote.call("GET", f"/executions/{execution_id}"))[1]

    execution = _sync(go())
    _print_execution(execution, False)
    raise SystemExit(_exit(execution))


def _again(
    server: str, token: str | None, path: str, as_json: bool, quiet: bool, **params: str
) -> None:
    """POST a restart or replay, follow the execution it drives (the same or a new one)."""

    async def go() -> Any:
        async with Remote(server, token) as remote:
            _, started = await remote.call("POST", path, params=params)
            return await _watch(remote, started["id"], quiet or as_json)

    _conclude(_sync(go()), as_json, quiet)


async def _watch(remote: Remote, execution_id: str, silent: bool) -> Any:
    """Follow a started execution until it ends or pauses (printing its log lines unless
    ``silent``); the execution as it then is."""
    if silent:
        await _wait(remote, execution_id)
    else:
        await _follow(remote, execution_id)
    return (await remote.call("GET", f"/executions/{execution_id}"))[1]


def _conclude(execution: dict[str, Any], as_json: bool, quiet: bool) -> NoReturn:
    """Print a followed execution's outcome and exit 0/1 as a local run does."""
    if as_json:
        click.echo(json.dumps(execution, indent=2))
    elif not quiet:
        _print_execution(execution, False)
    raise SystemExit(_exit(execution))


def remote_restart(
    server: str, token: str | None, execution_id: str, as_json: bool, quiet: bool, **_: Any
) -> None:
    _again(server, token, f"/executions/{execution_id}/restart", as_json, quiet)


def remote_replay(
    server: str,
    token: str | None,
    execution_id: str,
    taskrun_id: str | None,
    as_json: bool,
    quiet: bool,
    **_: Any,
) -> None:
    extra = {"taskRunId": taskrun_id} if taskrun_id else {}
    _again(server, token, f"/executions/{execution_id}/replay", as_json, quiet, **extra)


def _exit(execution: dict[str, Any]) -> int:
    return 0 if execution["state"]["current"] in ("SUCCESS", "WARNING", "PAUSED") else 1


def remote_run(
    server: str,
    token: str | None,
    flow_file: Path,
    inputs: tuple[str, ...],
    inputs_json: Path | None,
    labels: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    **_: Any,
) -> None:
    """Deploy the flow file to the server, start it there, stream its logs, exit 0/1."""
    from plait.cli._run import parse_pairs

    given: dict[str, Any] = {}
    if inputs_json is not None:
        loaded = json.loads(inputs_json.read_text("utf-8"))
        if not isinstance(loaded, dict):
            raise UserError("inputs must be a JSON object", file=str(inputs_json))
        given.update(loaded)
    given.update(parse_pairs(inputs, "input"))
    body = {"inputs": given, "labels": parse_pairs(labels, "label")}
    sources = _sources((flow_file,))

    async def go() -> Any:
        async with Remote(server, token) as remote:
            [(uid, _revision)] = await deploy(remote, sources)
            namespace, _, flow_id = uid.rpartition(".")
            _, started = await remote.call("POST", f"/executions/{namespace}/{flow_id}", json=body)
            return await _watch(remote, started["id"], quiet or as_json)

    _conclude(_sync(go()), as_json, quiet)


async def _wait(remote: Remote, execution_id: str) -> None:
    async for event, data in remote.events(f"/logs/{execution_id}/follow"):
        if event == "state" and data == "PAUSED":
            return


def install() -> None:
    """Attach --server to the local commands, and add ``plait flows sync``."""
    from plait.cli import _executions, _flows
    from plait.cli import _run as run_module

    with_server(_flows.deploy, remote_deploy)
    with_server(_executions.list_executions, remote_list)
    with_server(_executions.show, remote_show)
    with_server(
        _executions.logs,
        remote_logs,
        click.Option(["--follow", "-f"], is_flag=True, help="Stream new lines until it ends."),
    )
    with_server(_executions.kill, remote_kill)
    with_server(_executions.pause, remote_pause)
    with_server(_executions.resume, remote_resume)
    with_server(_executions.restart, remote_restart)
    with_server(_executions.replay, remote_replay)
    with_server(run_module.run, remote_run)

    @_flows.flows.command("sync")
    @click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
    @click.option("--delete", is_flag=True, help="Delete the server's flows not in DIRECTORY.")
    @server_options
    def sync_flows(directory: Path, delete: bool, server: str | None, token: str | None) -> None:
        """Keep a server's flows in step with a directory (or git checkout) of flow files."""
        if not server:
            raise UserError("flows sync needs --server (or $PLAIT_SERVER)")
        sources = _sources((directory,))

        async def go() -> tuple[list[tuple[str, int]], list[str]]:
            async with Remote(server, token) as remote:
                return await sync(remote, sources, delete)

        deployed, removed = _sync(go())
        for uid, revision in deployed:
            click.echo(f"{uid} revision {revision}")
        for uid in removed:
            click.echo(f"{uid} deleted")
