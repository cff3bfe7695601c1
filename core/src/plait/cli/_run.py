"""``plait run`` and ``plait run-examples``: run flows locally, with no server."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from plait_sdk import UserError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from plait.cli._app import cli, err_console, notify
from plait.cli._app import home_option as home_option
from plait.cli._display import execution_json, log_line, summary
from plait.cli._terminal import printable
from plait.flows import State, flow_files
from plait.records import Execution, LogRecord
from plait.templating import masked_view


def parse_pairs(pairs: tuple[str, ...], what: str, *, read_files: bool = True) -> dict[str, str]:
    """``key=value`` options as a dict; ``key=@path`` reads the value from a file (unless
    ``read_files`` is false: then the value keeps its ``@``)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--{what} {pair!r}: expected KEY=VALUE")
        if value.startswith("@") and read_files:
            try:
                value = Path(value[1:]).read_text("utf-8")
            except OSError as error:
                raise UserError(f"--{what} {key}: cannot read {value[1:]}: {error}") from None
        out[key] = value
    return out


def exit_code(state: State) -> int:
    """0 when the flow did its job (or waits for a resume), 1 otherwise."""
    return 0 if state in (State.SUCCESS, State.WARNING, State.PAUSED) else 1


class Progress:
    """Live tree of task runs on a terminal; log lines as they come everywhere."""

    def __init__(self, console: Console, *, live: bool, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.live: Live | None = None
        self._live_wanted = live and console.is_terminal and not quiet
        self._last = 0.0

    def on_log(self, record: LogRecord) -> None:
        if not self.quiet:
            self.console.print(log_line(record))

    def on_step(self, execution: Execution) -> None:
        if not self._live_wanted:
            return
        if self.live is None:
            self.live = Live(summary(execution), console=self.console, refresh_per_second=8)
            self.live.start()
        now = time.monotonic()
        if now - self._last > 0.1 or execution.state.terminal:
            self._last = now
            self.live.update(summary(execution))

    def finish(self, execution: Execution) -> None:
        if self.live is not None:
            self.live.update(summary(execution))
            self.live.stop()
        elif not self.quiet:
            self.console.print(summary(execution))
        elif exit_code(execution.state):
            # Quiet, but a failure is never silent: its one error line.
            reason = execution.error or f"execution {execution.id} ended {execution.state.value}"
            self.console.print(Text(f"error: {printable(reason)}", style="bold red"))


@cli.command("run")
@click.argument("flow_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--input", "-i", "inputs", multiple=True, help="An input: KEY=VALUE or KEY=@file.")
@click.option(
    "--inputs-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Inputs as a JSON object in a file.",
)
@click.option("--label", "-l", "labels", multiple=True, help="An execution label: KEY=VALUE.")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Deploy the flows in this directory first (subflows); default: the flow's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON on stdout.")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress, no logs: just the error line on a failure."
)
@home_option
def run(
    flow_file: Path,
    inputs: tuple[str, ...],
    inputs_json: Path | None,
    labels: tuple[str, ...],
    flows_dir: Path | None,
    as_json: bool,
    quiet: bool,
    home: Path | None,
) -> None:
    """Run FLOW_FILE locally until it ends, showing its task runs live.

    FLOW_FILE may also name a flow deployed in the local store, as NAMESPACE.FLOW_ID (e.g. one
    made with `plait blueprints use`): its latest revision runs."""
    given: dict[str, Any] = {}
    if inputs_json is not None:
        try:
            loaded = json.loads(inputs_json.read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read inputs: {error}", file=str(inputs_json)) from None
        if not isinstance(loaded, dict):
            raise UserError("inputs must be a JSON object", file=str(inputs_json))
        given.update(loaded)
    # ``@path`` is read once the flow says the input's type: a FILE input is uploaded as a file.
    pairs = parse_pairs(inputs, "input", read_files=False)
    given.update(pairs)
    progress = Progress(err_console, live=True, quiet=quiet or as_json)
    # Files are read before the event loop starts: no blocking I/O inside it.
    deployed = _deployed_name(flow_file)
    source = "" if deployed is not None else _read(flow_file)
    siblings = []
    if deployed is None and (flows_dir is not None or _calls_subflows(source)):
        siblings = [
            (file, _read(file))
            for file in flow_files((flows_dir or flow_file.parent,))
            if file.resolve() != flow_file.resolve()
        ]
    execution = asyncio.run(
        _run_one(
            (flow_file, source),
            siblings,
            given,
            parse_pairs(labels, "label"),
            home,
            progress,
            files=set(pairs),
            deployed=deployed,
        )
    )
    progress.finish(execution)
    if as_json:
        click.echo(json.dumps(execution_json(execution), indent=2))
    if execution.state is State.PAUSED and not as_json:
        err_console.print(
            f"paused: resume with `plait executions resume {execution.id}`", markup=False
        )
    sys.exit(exit_code(execution.state))


async def _run_one(
    flow: tuple[Path, str],
    siblings: list[tuple[Path, str]],
    inputs: dict[str, Any],
    labels: dict[str, str],
    home: Path | None,
    progress: Progress,
    files: set[str] = frozenset(),  # type: ignore[assignment]
    deployed: tuple[str, str] | None = None,
) -> Execution:
    from plait.cli._inputs import local_inputs
    from plait.flows import validate_flow_text
    from plait.local import LocalHome, local_runner
    from plait.records import new_id

    async with local_runner(
        LocalHome.resolve(home),
        on_log=progress.on_log,
        on_step=progress.on_step,
        notify=notify,
    ) as runner:
        # The flows beside it are deployed so its subflows resolve; a broken one is left out
        # (only the flow being run has to be valid).
        for file, text in siblings:
            if not validate_flow_text(
                text, registry=runner.host.registry, file=str(file), templates=runner.templates
            ):
                await runner.deploy(text, file=str(file))
        if deployed is not None:  # a flow of the local store, at its latest revision
            stored = await runner.repo.get_flow(*deployed)
            if stored is None:
                raise UserError(
                    f"no flow file {flow[0]} and no deployed flow {'.'.join(deployed)} "
                    "(see `plait flows list`)"
                )
            flow_obj = await runner.flow_of(*deployed, stored.revision)
            revision = stored.revision
        else:
            flow_obj, revision = await runner.deploy(flow[1], file=str(flow[0]))
        for warning in flow_obj.warnings:  # deprecated Kestra forms: they run, say the new one
            err_console.print(f"[yellow]warning:[/] {escape(printable(str(warning)))}")
        execution_id = new_id()
        inputs = await local_inputs(runner, flow_obj, execution_id, inputs, files)
        return await runner.run(
            flow_obj, revision, inputs, labels=labels, execution_id=execution_id
        )


def _calls_subflows(source: str) -> bool:
    """Whether the flow may start subflows (then the flows beside it are deployed too)."""
    return "Subflow" in source or "flow.Flow" in source or "ForEachItem" in source


def _deployed_name(given: Path) -> tuple[str, str] | None:
    """``NAMESPACE.FLOW_ID`` (or ``NAMESPACE/FLOW_ID``) naming a deployed flow, when no file of
    that name exists: ``plait run company.team.hello`` runs what `plait flows deploy` or
    `plait blueprints use` stored."""
    import re

    from plait.flows import ID_PATTERN, NAMESPACE_PATTERN

    text = str(given)
    if given.exists() or text.endswith((".yaml", ".yml")):
        return None
    cut = max(text.rfind("/"), text.rfind("."))
    namespace, flow_id = text[:cut], text[cut + 1 :]
    if cut <= 0 or not re.match(NAMESPACE_PATTERN, namespace) or not re.match(ID_PATTERN, flow_id):
        return None
    return namespace, flow_id


def _read(file: Path) -> str:
    from plait.flows import read_flow_file

    if not file.exists():
        raise UserError("no such flow file", file=str(file))
    return read_flow_file(file)  # within flow_file_max_bytes


@cli.command("run-examples")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@home_option
@click.option("--verbose", "-v", is_flag=True, help="Show every log line and task-run tree.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list of {file, warnings, execution} on stdout instead of the table.",
)
def run_examples(directory: Path, home: Path | None, verbose: bool, as_json: bool) -> None:
    """Run every flow in DIRECTORY with its default inputs; print a table of results."""
    sources = [(file, _read(file)) for file in flow_files((directory,))]
    results = asyncio.run(_run_all(sources, home, verbose))
    failed = sum(1 for _file, execution, _took, _warnings in results if exit_code(execution.state))
    if as_json:
        # One process runs many flows; a caller (a compatibility suite) reads every execution.
        shown = [
            {
                "file": file.name,
                "warnings": [str(warning) for warning in warnings],
                "execution": execution_json(execution),
            }
            for file, execution, _took, warnings in results
        ]
        click.echo(json.dumps(shown, indent=2))
        sys.exit(1 if failed else 0)
    from rich.table import Table

    table = Table(title=f"example flows in {directory}")
    for column in ("flow", "state", "tasks", "took", "outputs"):
        table.add_column(column)
    for file, execution, took, _warnings in results:
        shown = masked_view(execution.outputs)
        outputs = json.dumps(shown, default=str) if execution.outputs else ""
        if len(outputs) > 60:
            outputs = outputs[:57] + "..."
        state = execution.state.value
        if exit_code(execution.state):
            state = f"[bold red]{state}[/]"
        table.add_row(file.name, state, str(len(execution.task_runs)), f"{took:.3f}s", outputs)
    Console().print(table)
    if failed:
        err_console.print(f"{failed} example flow(s) did not succeed", markup=False)
    sys.exit(1 if failed else 0)


async def _run_all(
    sources: list[tuple[Path, str]], home: Path | None, verbose: bool
) -> list[tuple[Path, Execution, float, list[UserError]]]:
    from plait.local import LocalHome, local_runner

    progress = Progress(err_console, live=False, quiet=not verbose)
    results = []
    async with local_runner(
        LocalHome.resolve(home), on_log=progress.on_log, notify=notify
    ) as runner:
        deployed = []
        for file, text in sources:
            deployed.append((file, *await runner.deploy(text, file=str(file))))
        for file, flow, revision in deployed:
            started = time.perf_counter()
            execution = await runner.run(flow, revision, {})
            took = time.perf_counter() - started
            results.append((file, execution, took, list(flow.warnings)))
            if verbose:
                progress.finish(execution)
            elif execution.state.failed:
                err_console.print(summary(execution))
    return results
