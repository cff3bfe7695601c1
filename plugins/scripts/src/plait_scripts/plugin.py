"""Entry point of plait-scripts: registers its task types with Plait."""

from __future__ import annotations

from plait_sdk import RegisterTask, hookimpl

from plait_scripts.node import NodeCommands, NodeScript
from plait_scripts.python import PythonCommands, PythonScript
from plait_scripts.shell import ShellCommands, ShellScript

PLAIT_PLUGIN_API = ">=1.0,<2"

TASKS = (PythonScript, PythonCommands, ShellScript, ShellCommands, NodeScript, NodeCommands)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """Register the Python, Shell and Node.js ``Script`` and ``Commands`` tasks."""
    for task in TASKS:
        register(task)
