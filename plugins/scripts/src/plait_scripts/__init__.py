"""plait-scripts: Python, Shell and Node.js scripts run as real subprocesses."""

from plait_scripts._base import ScriptOutput
from plait_scripts.node import NodeCommands, NodeScript
from plait_scripts.python import PythonCommands, PythonScript
from plait_scripts.runners import ProcessRunner, TaskRunner, register_runner
from plait_scripts.shell import ShellCommands, ShellScript

__all__ = [
    "NodeCommands",
    "NodeScript",
    "ProcessRunner",
    "PythonCommands",
    "PythonScript",
    "ScriptOutput",
    "ShellCommands",
    "ShellScript",
    "TaskRunner",
    "register_runner",
]
