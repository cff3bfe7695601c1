"""The base of flowable task types: tasks the executor decides instead of a worker running."""

from __future__ import annotations

from typing import Any, ClassVar

from plait_sdk import Task
from pydantic import BaseModel

from plait.flows._model import TaskSpec


class FlowableTask(Task):
    """A task whose work is orchestrating child tasks (Sequential, If, ForEach...).

    Child task lists are fields typed ``list[TaskSpec]`` (or ``dict[str, list[TaskSpec]]`` for
    Switch-like cases); :meth:`child_specs` finds them generically so validation can walk the
    whole tree. Other properties that may hold templates are typed to accept a string too: they
    are rendered by the executor when it needs them.
    """

    flowable: ClassVar[bool] = True
    starts_flows: ClassVar[bool] = False
    """Whether it starts executions of the flow named by its ``namespace`` and ``flow_id``
    (Subflow, ForEachItem): validation refuses one naming the flow it is in."""

    def child_specs(self) -> list[TaskSpec]:
        """Every direct child task spec, in declaration order."""
        found: list[TaskSpec] = []
        for name in type(self).model_fields:
            _collect(getattr(self, name), found)
        return found


def _collect(value: Any, found: list[TaskSpec]) -> None:
    if isinstance(value, TaskSpec):
        found.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), found)
