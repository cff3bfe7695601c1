"""Core flowable tasks: decided by the executor, never run by a worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from plait_sdk import Example, Model
from pydantic import Field, model_validator

from plait.flows import FlowableTask, Input, TaskSpec

_K = "io.kestra.plugin.core.flow."


class _WithHandlers(FlowableTask):
    errors: list[TaskSpec] = Field(default_factory=list)
    """Tasks run when a child task fails."""
    finally_: list[TaskSpec] = Field(default_factory=list, alias="finally")
    """Tasks run after the children, whatever their outcome."""


class Sequential(_WithHandlers):
    """Run child tasks one after the other."""

    type_name: ClassVar[str] = "plait.core.Sequential"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Sequential",)
    tasks: list[TaskSpec] = Field(min_length=1)


class Parallel(_WithHandlers):
    """Run child tasks at the same time (at most ``concurrent`` at once; 0 = all)."""

    type_name: ClassVar[str] = "plait.core.Parallel"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Parallel",)
    tasks: list[TaskSpec] = Field(min_length=1)
    concurrent: int | str = 0
    """How many children may run at once; 0 means no limit."""


class If(_WithHandlers):
    """Run ``then`` when ``condition`` renders truthy, else ``else``."""

    type_name: ClassVar[str] = "plait.core.If"
    aliases: ClassVar[tuple[str, ...]] = (_K + "If",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Branch on an input",
            code=(
                'id: check\ntype: plait.core.If\ncondition: "{{ inputs.amount > 100 }}"\n'
                "then:\n  - id: big\n    type: plait.core.Log\n    message: big order\n"
                "else:\n  - id: small\n    type: plait.core.Log\n    message: small order"
            ),
        ),
    )
    condition: Any
    """A template (or value); truthy unless false, 0, empty, "false", "0", "no" or null."""
    then: list[TaskSpec] = Field(min_length=1)
    else_: list[TaskSpec] = Field(default_factory=list, alias="else")


class Switch(_WithHandlers):
    """Run the tasks of the case matching ``value`` (``defaults`` when none matches)."""

    type_name: ClassVar[str] = "plait.core.Switch"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Switch",)
    value: Any
    """Rendered to text and matched against the case names."""
    cases: dict[str, list[TaskSpec]] = Field(default_factory=dict)
    defaults: list[TaskSpec] = Field(default_factory=list)


class ForEach(_WithHandlers):
    """Run ``tasks`` once per value (``taskrun.value`` / ``taskrun.iteration`` in templates)."""

    type_name: ClassVar[str] = "plait.core.ForEach"
    aliases: ClassVar[tuple[str, ...]] = (_K + "ForEach",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Process each file, three at a time",
            code=(
                'id: each\ntype: plait.core.ForEach\nvalues: ["a.csv", "b.csv", "c.csv"]\n'
                "concurrencyLimit: 3\ntasks:\n  - id: process\n    type: plait.core.Log\n"
                '    message: "{{ taskrun.value }}"'
            ),
        ),
    )
    values: Any
    """A list, a JSON array string, or a template rendering to one."""
    concurrency_limit: int | str = 1
    """How many values are processed at once; 0 means all at once."""
    tasks: list[TaskSpec] = Field(min_length=1)


class EachSequential(ForEach):
    """Kestra's older ForEach: ``value`` instead of ``values``, one value at a time."""

    type_name: ClassVar[str] = "plait.core.EachSequential"
    aliases: ClassVar[tuple[str, ...]] = (_K + "EachSequential",)
    examples: ClassVar[tuple[Example, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _kestra_names(cls, data: Any) -> Any:
        return _renamed(data, {"value": "values"})


class EachParallel(ForEach):
    """Kestra's older parallel ForEach: ``value``, and ``concurrent`` (0, the default: all)."""

    type_name: ClassVar[str] = "plait.core.EachParallel"
    aliases: ClassVar[tuple[str, ...]] = (_K + "EachParallel",)
    examples: ClassVar[tuple[Example, ...]] = ()
    concurrency_limit: int | str = 0

    @model_validator(mode="before")
    @classmethod
    def _kestra_names(cls, data: Any) -> Any:
        return _renamed(data, {"value": "values", "concurrent": "concurrencyLimit"})


def _renamed(data: Any, names: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        return data
    for old, new in names.items():
        if old in data:
            if new in data:
                raise ValueError(f"give {new} or {old}, not both")
            data = {(new if k == old else k): v for k, v in data.items()}
    return data


class DagTask(Model):
    task: TaskSpec
    depends_on: list[str] = Field(default_factory=list)


class Dag(_WithHandlers):
    """Run tasks as soon as the tasks they depend on have succeeded."""

    type_name: ClassVar[str] = "plait.core.Dag"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Dag",)
    tasks: list[DagTask] = Field(min_length=1)
    concurrent: int | str = 0

    def dependency_graph(self) -> dict[str, list[str]]:
        return {t.task.id: list(t.depends_on) for t in self.tasks}


class AllowFailure(_WithHandlers):
    """Run child tasks; a failure among them ends this task in WARNING instead of FAILED."""

    type_name: ClassVar[str] = "plait.core.AllowFailure"
    aliases: ClassVar[tuple[str, ...]] = (_K + "AllowFailure",)
    tasks: list[TaskSpec] = Field(min_length=1)


class WorkingDirectory(_WithHandlers):
    """Run child tasks sharing one temporary working directory."""

    type_name: ClassVar[str] = "plait.core.WorkingDirectory"
    aliases: ClassVar[tuple[str, ...]] = (_K + "WorkingDirectory",)
    tasks: list[TaskSpec] = Field(min_length=1)


class Pause(FlowableTask):
    """Pause the execution until resumed (optionally with validated inputs), or a duration."""

    type_name: ClassVar[str] = "plait.core.Pause"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Pause",)
    pause_duration: timedelta | None = None
    """Resume by itself after this long; wait for a resume when unset."""
    on_resume: list[Input] = Field(default_factory=list)
    """Inputs a resume must (or may) carry, validated like flow inputs: an approval form."""


class CheckFrequency(Model):
    interval: timedelta = timedelta(seconds=1)
    max_iterations: int | None = Field(default=100, ge=1)
    max_duration: timedelta | None = None


class LoopUntil(_WithHandlers):
    """Run ``tasks`` again and again until ``condition`` renders truthy."""

    type_name: ClassVar[str] = "plait.core.LoopUntil"
    aliases: ClassVar[tuple[str, ...]] = (_K + "LoopUntil",)
    condition: Any
    tasks: list[TaskSpec] = Field(min_length=1)
    check_frequency: CheckFrequency = Field(default_factory=CheckFrequency)
    fail_on_max_reached: bool = True


class WaitFor(LoopUntil):
    """Run ``tasks`` again and again *while* ``condition`` renders truthy (Kestra's WaitFor).

    The condition is checked after each run of the tasks, which it can read
    (``outputs.<id>.iterationCount`` counts the runs). Unlike LoopUntil, reaching
    ``maxIterations`` (100) or ``maxDuration`` (1 hour) ends it in SUCCESS unless
    ``failOnMaxReached`` is true.
    """

    type_name: ClassVar[str] = "plait.core.WaitFor"
    aliases: ClassVar[tuple[str, ...]] = (_K + "WaitFor",)
    check_frequency: CheckFrequency = Field(
        default_factory=lambda: CheckFrequency(maxDuration=timedelta(hours=1))
    )
    fail_on_max_reached: bool = False


class Subflow(FlowableTask):
    """Start another flow's execution, wait for it and take its outputs."""

    type_name: ClassVar[str] = "plait.core.Subflow"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Subflow",)
    namespace: str
    flow_id: str
    revision: int | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, Any] = Field(default_factory=dict)
    wait: bool = True
    """Wait for the subflow to end before going on."""
    transmit_failed: bool = True
    """Fail this task when the subflow fails (with wait)."""


class Transition(Model):
    when: Any = True
    """A condition template; the first truthy transition is taken."""
    to: str


class MachineState(Model):
    tasks: list[TaskSpec] = Field(default_factory=list)
    transitions: list[Transition] = Field(default_factory=list)


class StateMachine(FlowableTask):
    """Named states, each with tasks; transitions chosen by conditions over outputs.

    The machine starts in ``initial``, runs that state's tasks, then takes the first transition
    whose ``when`` renders truthy, until it reaches one of ``finals``. Each visit runs the
    state's tasks afresh (``taskrun.iteration`` is the transition count), and every transition
    is recorded in the task run's outputs (``outputs.<id>.transitions``).
    """

    type_name: ClassVar[str] = "plait.core.StateMachine"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="An order going Pending -> Processing -> Shipped",
            code=(
                "id: order\ntype: plait.core.StateMachine\ninitial: Pending\nfinals: [Shipped]\n"
                "states:\n  Pending:\n    tasks:\n      - id: check\n"
                "        type: plait.core.Return\n        format: ok\n    transitions:\n"
                "      - when: \"{{ outputs.check.value == 'ok' }}\"\n"
                "        to: Processing\n  Processing:\n    transitions:\n      - to: Shipped\n"
                "  Shipped: {}"
            ),
        ),
    )
    states: dict[str, MachineState] = Field(min_length=1)
    initial: str
    finals: list[str] = Field(min_length=1)
    max_transitions: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _known_states(self) -> StateMachine:
        names = set(self.states)
        problems = [n for n in [self.initial, *self.finals] if n not in names]
        problems += [t.to for s in self.states.values() for t in s.transitions if t.to not in names]
        if problems:
            raise ValueError(f"unknown state(s): {', '.join(sorted(set(problems)))}")
        return self


FLOWABLE_TASKS = (
    Sequential,
    Parallel,
    If,
    Switch,
    ForEach,
    EachSequential,
    EachParallel,
    Dag,
    AllowFailure,
    WorkingDirectory,
    Pause,
    LoopUntil,
    WaitFor,
    Subflow,
    StateMachine,
)
