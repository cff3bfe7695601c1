"""Hook implementations of the built-in plugin: the core tasks are a plugin like any other."""

from __future__ import annotations

from plait_sdk import RegisterTask, hookimpl

from plait.builtin.basic import Fail, Labels, Log, OutputValues, Return, Sleep
from plait.builtin.flowable import FLOWABLE_TASKS

PLAIT_PLUGIN_API = ">=1.0,<2"

RUNNABLE_TASKS = (Log, Return, OutputValues, Sleep, Fail, Labels)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    for task in (*RUNNABLE_TASKS, *FLOWABLE_TASKS):
        register(task)
