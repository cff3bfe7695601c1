"""Entry point of plait-scripts: registers its task types with Plait."""

from __future__ import annotations

import asyncio
from typing import Any

from plait_sdk import RegisterTask, RegisterTaskRunner, hookimpl

from plait_scripts._leftovers import configure, kill_leftovers
from plait_scripts.node import NodeCommands, NodeScript
from plait_scripts.python import PythonCommands, PythonScript
from plait_scripts.runners import ProcessRunner
from plait_scripts.shell import ShellCommands, ShellScript

PLAIT_PLUGIN_API = ">=1.0,<2"

TASKS = (PythonScript, PythonCommands, ShellScript, ShellCommands, NodeScript, NodeCommands)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """Register the Python, Shell and Node.js ``Script`` and ``Commands`` tasks."""
    for task in TASKS:
        register(task)


@hookimpl
def register_task_runners(register: RegisterTaskRunner) -> None:
    """The local process runner (the default ``taskRunner``)."""
    register(ProcessRunner)


@hookimpl
async def plait_startup(settings: dict[str, Any]) -> None:
    """Keep a record of each running script's process group under the home, and kill the
    groups a dead Plait process left behind (see :mod:`plait_scripts._leftovers`)."""
    home = settings.get("home")
    configure(home)
    if home is not None:
        await asyncio.to_thread(kill_leftovers, home)  # reads /proc: off the event loop
