"""Flowable tasks: tasks whose work is deciding what their child tasks do.

A flowable never runs in a worker. At each step of an execution the core calls its
:meth:`FlowableTask.decide` with a :class:`FlowScope`, the one door to what it may read (its
children's states, outputs and loop values) and decide (start or skip children, finish, fail,
wait). Decisions must be deterministic given the scope: keep what was decided in
:meth:`FlowScope.remember`, as the core may call ``decide`` again at every step.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from plait_sdk._models import PROPERTIES_CONFIG, Model
from plait_sdk._state import State
from plait_sdk._task import Task

#: Key of the validation context under which the core passes its parser of child task entries.
CHILD_TASK_PARSER = "plait.child-task-parser"
"""The key under which the core passes its child-task parser in pydantic's validation context
(how a :data:`TaskList` field becomes the core's own task entries). Plugins never set it.

Example::

    Branch.model_validate(properties, context={CHILD_TASK_PARSER: parse})  # done by the core
"""


class ChildTask(Model):
    """One child task entry of a flowable (``id``, ``type`` and the type's properties).

    In a flow the core parses it into its own task entry, resolved and validated like any task;
    a flowable only passes it back to the scope (``scope.run(task)``) and reads its ``id``.

    Example::

        for task in self.tasks:  # self.tasks: TaskList
            if scope.child(task) is None:
                await scope.run(task)
    """

    model_config = ConfigDict(**{**PROPERTIES_CONFIG, "extra": "allow"})
    id: str
    """The task id, unique in the flow."""
    type: str
    """The task type."""


def _parse_child(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    parse = (info.context or {}).get(CHILD_TASK_PARSER)
    if parse is not None and not isinstance(value, ChildTask):
        return parse(value)
    return handler(value)


#: The type of a field holding child tasks: ``tasks: TaskList`` (``dict[str, TaskList]`` for
#: Switch-like cases).
TaskList = list[Annotated[ChildTask, WrapValidator(_parse_child)]]
"""The type of a flowable's field that holds child tasks (validated by the core like any task).

Example::

    class Both(FlowableTask):
        type_name: ClassVar[str] = "acme.Both"
        tasks: TaskList
        otherwise: TaskList = []
"""


class ChildRun(Protocol):
    """A child task run, as a flowable sees it (read only).

    Example::

        run = scope.child(task)
        if run is not None and run.state.failed:
            scope.fail(f"{run.task_id} failed")
    """

    @property
    def id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def outputs(self) -> dict[str, Any]: ...
    @property
    def value(self) -> Any: ...
    @property
    def iteration(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...


class FlowScope(abc.ABC):
    """What a flowable task run may read and decide, handed to :meth:`FlowableTask.decide`.

    Children are addressed by their task entry and, inside loops, by an ``iteration`` (each
    iteration has its own runs of the same tasks) and a loop ``value`` (``taskrun.value`` in
    their templates).

    Example::

        async def decide(self, scope: FlowScope) -> None:
            if "branch" not in scope.memory:
                scope.remember("branch", 0 if await scope.render(self.condition) else 1)
            branch = self.branches[scope.memory["branch"]]
            scope.finish(await scope.run_tasks(branch))   # None while children still run
    """

    # -- reading ------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def now(self) -> datetime:
        """The time of this step (UTC)."""

    @property
    @abc.abstractmethod
    def started(self) -> datetime:
        """When this flowable run started."""

    @property
    @abc.abstractmethod
    def state(self) -> State:
        """This flowable run's own state."""

    @property
    @abc.abstractmethod
    def memory(self) -> Mapping[str, Any]:
        """What this run remembered (:meth:`remember`); kept across steps and restarts."""

    @property
    @abc.abstractmethod
    def outputs(self) -> Mapping[str, Any]:
        """This run's outputs so far."""

    @property
    @abc.abstractmethod
    def holding(self) -> bool:
        """True while the execution is paused by hand: start nothing new."""

    @abc.abstractmethod
    async def render(self, value: Any) -> Any:
        """Render templates in ``value`` with this run's context."""

    async def whole_number(self, value: Any, name: str) -> int:
        """``value`` rendered as a whole number >= 0 (once; remembered under ``name``)."""
        if name not in self.memory:
            rendered = await self.render(value)
            try:
                self.remember(name, max(int(rendered), 0))
            except (TypeError, ValueError):
                from plait_sdk._errors import UserError

                raise UserError(f"{name} must be a whole number, got {rendered!r}") from None
        return int(self.memory[name])

    @abc.abstractmethod
    def child(self, task: ChildTask, *, iteration: int | None = None) -> ChildRun | None:
        """The run of child ``task`` (in ``iteration``), or ``None`` if it was never started."""

    @abc.abstractmethod
    def children(self, of: ChildRun | None = None) -> list[ChildRun]:
        """Every direct child run (or every child run of child run ``of``), in creation
        order."""

    @abc.abstractmethod
    def sibling(self, task_id: str) -> ChildRun | None:
        """The run of task ``task_id`` beside this one (same parent and iteration)."""

    # -- deciding -----------------------------------------------------------------------------

    @abc.abstractmethod
    def remember(self, key: str, value: Any) -> None:
        """Keep a decision (JSON-able) for the next steps: read it back from :attr:`memory`."""

    @abc.abstractmethod
    def set_outputs(self, outputs: Mapping[str, Any]) -> None:
        """Replace this run's outputs (visible at once as ``outputs.<id>``)."""

    @abc.abstractmethod
    async def run(
        self, task: ChildTask, *, iteration: int | None = None, value: Any = None
    ) -> ChildRun:
        """Start child ``task`` if it has no run yet (its ``runIf`` may skip it), else move it
        on; its run, whose state says whether it ended."""

    @abc.abstractmethod
    def skip(self, task: ChildTask, *, iteration: int | None = None, value: Any = None) -> ChildRun:
        """Create child ``task``'s run as SKIPPED (it never runs)."""

    @abc.abstractmethod
    async def run_tasks(
        self,
        tasks: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
        parallel: bool = False,
        concurrency: int = 0,
    ) -> State | None:
        """Run ``tasks`` one after the other (or side by side, at most ``concurrency`` at once,
        0 for all): ``None`` while some still run, else the block's state (FAILED as soon as one
        fails, WARNING if one warned, else SUCCESS)."""

    @abc.abstractmethod
    async def handle(
        self,
        state: State | None,
        errors: Sequence[ChildTask],
        finally_: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
    ) -> State | None:
        """After a block ended in ``state``: run ``errors`` if it failed, then ``finally``;
        ``None`` while they run, else the state to end with."""

    @abc.abstractmethod
    def finish(
        self, state: State | None, *, reason: str | None = None, allow_failure: bool = False
    ) -> None:
        """End this run in ``state`` (nothing when ``None``); ``allow_failure`` turns FAILED
        into WARNING. ``reason`` is shown as the run's error."""

    def fail(self, reason: str) -> None:
        """End this run FAILED, saying why."""
        self.finish(State.FAILED, reason=reason)

    @abc.abstractmethod
    def pause(self) -> None:
        """Pause this run until resumed (a resume sets ``memory["resumed"]``)."""

    @abc.abstractmethod
    def wake_at(self, when: datetime) -> None:
        """Call ``decide`` again at ``when`` at the latest (a timer)."""

    @abc.abstractmethod
    def end_execution(self, state: State, reason: str) -> None:
        """End this run and the whole execution in ``state`` (as Exit does)."""

    @abc.abstractmethod
    def start_flow(self) -> None:
        """Ask the core to start the flow this task names (:meth:`FlowableTask.child_flow`);
        it reports back with ``memory["child"]`` and, once that execution ends, ends this run."""

    @abc.abstractmethod
    def give_properties(self, child: ChildRun, properties: Mapping[str, Any]) -> None:
        """Give a not yet started runnable child its properties, instead of its templates."""


class ChildFlow(Model):
    """The flow execution a flowable starts (a Subflow): what it names and how it waits.

    Example::

        def child_flow(self) -> ChildFlow | None:
            return ChildFlow(namespace="company.ops", flow_id="notify", inputs={"to": self.to})
    """

    namespace: Any = None
    flow_id: Any = None
    blueprint: str | None = None
    blueprint_version: str | None = None
    revision: int | None = None
    inputs: dict[str, Any] = {}
    labels: dict[str, Any] = {}
    wait: bool = True
    transmit_failed: bool = True
    inherit_labels: bool = False
    outputs: dict[str, Any] | None = None
    """Kestra's older Subflow ``outputs`` mapping (before 0.15): rendered in the child
    execution, as its outputs, when the child flow declares none."""


class FlowableTask(Task):
    """A task whose work is deciding what its child tasks do (Sequential, If, ForEach...).

    Child tasks are fields typed :data:`TaskList` (or ``dict[str, TaskList]``); the core
    validates them like any task of the flow. Other properties that may hold templates are typed
    to accept a string too: render them in :meth:`decide` with ``scope.render``.

    Example::

        class Both(FlowableTask):
            '''Run ``first`` then ``second``.'''
            type_name: ClassVar[str] = "acme.Both"
            first: TaskList
            second: TaskList

            async def decide(self, scope: FlowScope) -> None:
                state = await scope.run_tasks([*self.first, *self.second])
                scope.finish(state)
    """

    flowable: ClassVar[bool] = True
    starts_flows: ClassVar[bool] = False
    """Whether it starts executions of another flow (:meth:`child_flow`): validation refuses one
    naming the flow it is in."""
    value_name: ClassVar[str | None] = None
    """Another name of its runs' loop value in templates, ``taskrun.<value_name>`` (ForEachItem's
    subflows read their batch file as ``taskrun.items``)."""

    async def decide(self, scope: FlowScope) -> None:
        """Decide this step: start children, finish or fail through ``scope``."""
        raise NotImplementedError(f"{type(self).__name__}.decide is not implemented")

    def child_specs(self) -> list[Any]:
        """Every direct child task entry, in declaration order."""
        found: list[Any] = []
        for name in type(self).model_fields:
            _collect(getattr(self, name), found)
        return found

    def expand(self, task_id: str) -> list[Any]:
        """The tasks generated for this one (named after ``task_id``); none by default."""
        return []

    def dependency_graph(self) -> dict[str, list[str]] | None:
        """Child task id -> ids it depends on, checked by validation (a DAG); ``None``."""
        return None

    def child_flow(self) -> ChildFlow | None:
        """The flow this task starts (with ``starts_flows``); ``None`` by default."""
        return None

    def resume_inputs(self) -> list[Any]:
        """The inputs a resume of this (paused) task must carry; none by default."""
        return []

    def shares_working_directory(self) -> bool:
        """Whether its children share one working directory (WorkingDirectory)."""
        return False


def _collect(value: Any, found: list[Any]) -> None:
    if isinstance(value, ChildTask):
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
