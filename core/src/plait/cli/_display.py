"""Rendering executions for the terminal: the task-run tree, log lines, outputs.

Every value that comes from a flow, an input, a task or the store goes through
:func:`printable` before it reaches the terminal: a newline in an input cannot forge a log line,
an ANSI/OSC escape sequence cannot retitle the window or clear the screen. Storage, ``--json``
and the API keep the real value.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from plait.cli._terminal import printable
from plait.flows import State
from plait.records import Execution, LogRecord, TaskRun
from plait.templating import masked_view

STYLE = {
    State.CREATED: "dim",
    State.QUEUED: "dim",
    State.RUNNING: "cyan",
    State.PAUSED: "magenta",
    State.RETRYING: "yellow",
    State.SUCCESS: "green",
    State.WARNING: "yellow",
    State.FAILED: "bold red",
    State.KILLING: "red",
    State.KILLED: "red",
    State.CANCELLED: "red",
    State.SKIPPED: "dim",
    State.RETRIED: "yellow",
}
LEVEL_STYLE = {"ERROR": "bold red", "WARN": "yellow", "WARNING": "yellow", "DEBUG": "dim"}


def duration_of(history: list[Any], ended: bool) -> str:
    """From the first RUNNING to the last transition (or now while still running)."""
    start = next((t.date for t in history if t.state is State.RUNNING), None)
    if start is None:
        return ""
    end: datetime = history[-1].date if ended else datetime.now(start.tzinfo)
    return format_seconds((end - start).total_seconds())


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _label(run: TaskRun) -> Text:
    text = Text()
    text.append(printable(run.task_id), style="bold")
    if run.value is not None:
        text.append(f" [{printable(masked_view(run.value))}]", style="cyan")
    if run.iteration is not None:
        text.append(f" #{run.iteration}", style="cyan")
    text.append(f"  {run.state.value}", style=STYLE[run.state])
    took = duration_of(run.history, run.state.terminal)
    if took:
        text.append(f"  {took}", style="dim")
    if len(run.attempts) > 1:
        text.append(f"  attempt {len(run.attempts)}", style="yellow")
    if run.error and run.state.failed:
        text.append(f"  {printable(run.error.splitlines()[0])}", style="red")
    return text


def execution_tree(execution: Execution) -> Tree:
    """The execution as a tree of task runs, each with state and duration."""
    head = Text()
    head.append(printable(f"{execution.namespace}.{execution.flow_id}"), style="bold")
    head.append(f"  {printable(execution.id)}  ", style="dim")
    head.append(execution.state.value, style=STYLE[execution.state])
    took = duration_of(execution.history, execution.state.terminal)
    if took:
        head.append(f"  {took}", style="dim")
    if execution.retry_attempt > 1:
        head.append(f"  try {execution.retry_attempt}", style="yellow")
    if execution.retried_by:
        head.append(f"  retried as {printable(execution.retried_by)}", style="yellow")
    tree = Tree(head)
    children: dict[str | None, list[TaskRun]] = defaultdict(list)
    for run in execution.task_runs:
        children[run.parent_id].append(run)

    def add(node: Tree, parent: str | None) -> None:
        for run in children.get(parent, []):
            add(node.add(_label(run)), run.id)

    add(tree, None)
    return tree


def summary(execution: Execution) -> RenderableType:
    """The tree, then the outputs and the error, if any."""
    parts: list[RenderableType] = [execution_tree(execution)]
    if execution.outputs:
        parts.append(Text("outputs:", style="bold"))
        for key, value in masked_view(execution.outputs).items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            parts.append(Text(f"  {printable(key)}: {printable(shown)}"))
    if execution.error:
        parts.append(Text(f"error: {printable(execution.error)}", style="bold red"))
    return Group(*parts)


def log_line(record: LogRecord) -> Text:
    text = Text()
    text.append(record.timestamp.strftime("%H:%M:%S.%f")[:-3], style="dim")
    text.append(f" {record.level:<5} ", style=LEVEL_STYLE.get(record.level, ""))
    if record.task_id:
        text.append(f"{printable(record.task_id)}: ", style="bold")
    text.append(printable(record.message))
    return text


def execution_json(execution: Execution) -> dict[str, Any]:
    # Sealed values (SECRET inputs, outputs holding a secret) are shown masked.
    shown: dict[str, Any] = masked_view(execution.model_dump(mode="json", by_alias=True))
    return shown
