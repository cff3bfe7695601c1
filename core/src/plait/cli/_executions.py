"""``plait executions``: inspect and control executions in the local store."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from plait_sdk import UserError
from rich.console import Console
from rich.table import Table

from plait.cli._app import cli, err_console, notify
from plait.cli._display import STYLE, duration_of, execution_json, log_line, summary
from plait.cli._run import Progress, exit_code, home_option, parse_pairs
from plait.flows import State
from plait.records import Execution

if TYPE_CHECKING:
    from plait.engine import Recovery

T = TypeVar("T")
U = TypeVar("U")

#: How often ``kill --wait`` looks at the execution's state.
_WAIT_POLL_SECONDS = 0.2


async def _then(first: Awaitable[U], then: Callable[[U], Awaitable[T]]) -> T:
    return await then(await first)


def _with_runner(
    home: Path | None, action: Callable[[Any], Awaitable[T]], progress: Progress | None = None
) -> T:
    from plait.local import LocalHome, local_runner

    async def go() -> T:
        async with local_runner(
            LocalHome.resolve(home),
            on_log=progress.on_log if progress else None,
            on_step=progress.on_step if progress else None,
            notify=notify,
        ) as runner:
            return await action(runner)

    return asyncio.run(go())


def _finish(execution: Execution, progress: Progress, as_json: bool) -> None:
    progress.finish(execution)
    if as_json:
        click.echo(json.dumps(execution_json(execution), indent=2))
    sys.exit(exit_code(execution.state))


@cli.group()
def executions() -> None:
    """Executions in the local store: list, show, logs, kill, resume, restart, replay."""


@executions.command("list")
@click.option("--namespace", "-n", help="Only this namespace.")
@click.option("--flow", "flow_id", help="Only this flow id.")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in State]))
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@home_option
def list_executions(
    namespace: str | None,
    flow_id: str | None,
    states: tuple[str, ...],
    limit: int,
    as_json: bool,
    home: Path | None,
) -> None:
    """The most recent executions first."""
    found: list[Execution] = _with_runner(
        home,
        lambda r: r.repo.list_executions(
            namespace=namespace,
            flow_id=flow_id,
            states=[State(s) for s in states] or None,
            limit=limit,
        ),
    )
    if as_json:
        click.echo(json.dumps([execution_json(e) for e in found], indent=2))
        return
    table = Table()
    # Whole ids, never cut: they are what the other commands take (or a unique prefix).
    table.add_column("id", no_wrap=True, min_width=max((len(e.id) for e in found), default=2))
    for column in ("flow", "state", "started", "took"):
        table.add_column(column)
    for e in found:
        started = e.created.strftime("%Y-%m-%d %H:%M:%S") if e.created else ""
        table.add_row(
            e.id,
            f"{e.namespace}.{e.flow_id}",
            f"[{STYLE[e.state]}]{e.state.value}[/]",
            started,
            duration_of(e.history, e.state.terminal),
        )
    Console().print(table)


async def full_id(runner: Any, given: str) -> str:
    """The id of the one execution whose id is ``given`` or starts with it (as git takes a
    unique prefix of a commit id)."""
    if await runner.repo.get_execution(given) is not None:
        return given
    found: list[str] = await runner.repo.execution_ids_starting(given.lower(), limit=11)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"no execution with id {given} (nor one whose id starts with it)")
    shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
    raise UserError(
        f"execution id prefix {given!r} is ambiguous: it starts {shown}; give more characters"
    )


async def _get(runner: Any, execution_id: str) -> Execution:
    execution: Execution | None = await runner.repo.get_execution(
        await full_id(runner, execution_id)
    )
    if execution is None:
        raise UserError(f"no execution with id {execution_id}")
    return execution


@executions.command("show")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@home_option
def show(execution_id: str, as_json: bool, home: Path | None) -> None:
    """One execution: its task-run tree, outputs and error."""
    execution = _with_runner(home, lambda r: _get(r, execution_id))
    if as_json:
        click.echo(json.dumps(execution_json(execution), indent=2))
    else:
        Console().print(summary(execution))


@executions.command("logs")
@click.argument("execution_id")
@click.option("--task", "task_id", help="Only this task's logs.")
@click.option("--level", type=click.Choice(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]))
@click.option("--json", "as_json", is_flag=True)
@home_option
def logs(
    execution_id: str, task_id: str | None, level: str | None, as_json: bool, home: Path | None
) -> None:
    """The execution's log lines, oldest first (secrets already masked)."""

    async def fetch(runner: Any) -> list[Any]:
        execution = await _get(runner, execution_id)
        records = await runner.repo.logs(execution.id, min_level=level)
        return [r for r in records if task_id in (None, r.task_id)]

    records = _with_runner(home, fetch)
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json", by_alias=True) for r in records]))
        return
    console = Console(highlight=False)
    for record in records:
        console.print(log_line(record))


@executions.command("kill")
@click.argument("execution_id")
@click.option("--wait", is_flag=True, help="Wait for the execution to end; print its final state.")
@home_option
def kill(execution_id: str, wait: bool, home: Path | None) -> None:
    """Kill an execution: running tasks are cancelled, subflows killed too."""

    async def go(runner: Any) -> Execution:
        execution: Execution = await runner.kill(await full_id(runner, execution_id))
        if wait and not execution.state.terminal:
            err_console.print(
                f"kill requested for {execution.id}; waiting for it to end (if no process runs "
                "it any more, `plait executions recover` ends it)",
                markup=False,
            )
            while not execution.state.terminal:
                await asyncio.sleep(_WAIT_POLL_SECONDS)
                execution = await _get(runner, execution.id)
        return execution

    execution = _with_runner(home, go)
    if execution.state.terminal:
        err_console.print(f"{execution.id}: {execution.state.value}", markup=False)
    else:
        err_console.print(
            f"kill requested for {execution.id} ({execution.state.value}): the process running "
            "it stops it within seconds; `plait executions kill --wait` waits for the end",
            markup=False,
        )


@executions.command("pause")
@click.argument("execution_id")
@click.option("--wait", is_flag=True, help="Wait until it is PAUSED (or ended); print its state.")
@home_option
def pause(execution_id: str, wait: bool, home: Path | None) -> None:
    """Pause a running execution: no new task starts, running ones finish, then it is PAUSED
    until `plait executions resume`."""

    async def go(runner: Any) -> Execution:
        execution: Execution = await runner.pause(await full_id(runner, execution_id))
        while wait and execution.state is not State.PAUSED and not execution.state.terminal:
            await asyncio.sleep(_WAIT_POLL_SECONDS)
            execution = await _get(runner, execution.id)
        return execution

    execution = _with_runner(home, go)
    if execution.state is State.PAUSED or execution.state.terminal:
        err_console.print(f"{execution.id}: {execution.state.value}", markup=False)
    else:
        err_console.print(
            f"pause requested for {execution.id} ({execution.state.value}): the process running "
            "it pauses it once its running tasks end; `plait executions resume` resumes it",
            markup=False,
        )


@executions.command("resume")
@click.argument("execution_id")
@click.option("--input", "-i", "inputs", multiple=True, help="A resume input: KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@home_option
def resume(
    execution_id: str, inputs: tuple[str, ...], as_json: bool, quiet: bool, home: Path | None
) -> None:
    """Resume a PAUSED execution, with the inputs its Pause task declares (onResume)."""
    progress = Progress(err_console, live=True, quiet=quiet or as_json)
    values = parse_pairs(inputs, "input")
    execution = _with_runner(
        home, lambda r: _then(full_id(r, execution_id), lambda i: r.resume(i, values)), progress
    )
    _finish(execution, progress, as_json)


@executions.command("restart")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@home_option
def restart(execution_id: str, as_json: bool, quiet: bool, home: Path | None) -> None:
    """Restart a FAILED or KILLED execution from its failed task runs."""
    progress = Progress(err_console, live=True, quiet=quiet or as_json)
    execution = _with_runner(home, lambda r: _then(full_id(r, execution_id), r.restart), progress)
    _finish(execution, progress, as_json)


@executions.command("replay")
@click.argument("execution_id")
@click.option("--from", "taskrun_id", help="Replay from this task run id (default: the start).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@home_option
def replay(
    execution_id: str, taskrun_id: str | None, as_json: bool, quiet: bool, home: Path | None
) -> None:
    """Run an ended execution again as a new one, optionally from one of its task runs."""
    progress = Progress(err_console, live=True, quiet=quiet or as_json)
    execution = _with_runner(
        home, lambda r: _then(full_id(r, execution_id), lambda i: r.replay(i, taskrun_id)), progress
    )
    _finish(execution, progress, as_json)


@executions.command("recover")
@click.option("--quiet", "-q", is_flag=True)
@home_option
def recover(quiet: bool, home: Path | None) -> None:
    """Resume every execution left unfinished by a process that stopped (crash, kill -9).

    Executions another live process drives (their lease is held) are left to it.
    """
    progress = Progress(err_console, live=False, quiet=quiet)
    done: Recovery = _with_runner(home, lambda r: r.recover_unfinished(), progress)
    for execution in done.recovered:
        progress.finish(execution)
    err_console.print(f"recovered {len(done.recovered)} execution(s)", markup=False)
    for skipped in done.skipped:
        err_console.print(f"skipped: {skipped}", markup=False)
