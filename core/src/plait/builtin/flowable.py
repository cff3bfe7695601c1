"""Core flowable tasks: decided by the executor, never run by a worker."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from plait_sdk import Example, Model
from pydantic import Field, PrivateAttr, model_validator

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


class PauseBehavior(StrEnum):
    RESUME = "RESUME"
    WARN = "WARN"
    FAIL = "FAIL"
    CANCEL = "CANCEL"


class Pause(FlowableTask):
    """Pause the execution until resumed (optionally with validated inputs), or a duration."""

    type_name: ClassVar[str] = "plait.core.Pause"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Pause", "io.kestra.core.tasks.flows.Pause")
    pause_duration: timedelta | None = None
    """Resume by itself after this long; wait for a resume when unset (``delay``: Kestra's
    older name)."""
    behavior: PauseBehavior = PauseBehavior.RESUME
    """When ``pauseDuration`` passes without a resume: RESUME goes on, WARN ends the Pause in
    WARNING, FAIL fails it, CANCEL cancels the execution."""

    @model_validator(mode="before")
    @classmethod
    def _kestra_names(cls, data: Any) -> Any:
        return _renamed(data, {"delay": "pauseDuration"})

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


class _ChildFlow(FlowableTask):
    """What a task starting executions of another flow says about it (Kestra's
    ChildFlowInterface): Subflow, ForEachItem."""

    starts_flows: ClassVar[bool] = True
    revision: int | None = None
    """The subflow's revision (the latest when unset)."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The subflow's inputs (rendered)."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Labels of the subflow execution(s)."""
    wait: bool = True
    """Wait for the subflow execution(s) to end before going on."""
    transmit_failed: bool = True
    """Fail this task when a subflow execution fails (with wait)."""


class Subflow(_ChildFlow):
    """Start another flow's execution, wait for it and take its outputs.

    Name the flow with ``namespace`` and ``flowId``, or a blueprint of the catalogue with
    ``blueprint`` (and optionally a ``version`` range): the blueprint's flow then runs in this
    flow's namespace (its secrets and KV pairs), as the flow ``bp_<category>_<name>``.
    """

    type_name: ClassVar[str] = "plait.core.Subflow"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Subflow",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Call a blueprint of the catalogue",
            code=(
                "id: notify\ntype: plait.core.Subflow\nblueprint: ops.error-notification\n"
                'version: ">=1.0,<2"\ninputs:\n  webhook_url: https://hooks.example.com/x\n'
                '  message: "{{ flow.id }} failed"'
            ),
        ),
    )
    namespace: str | None = None
    """The subflow's namespace (with ``flowId``)."""
    flow_id: str | None = None
    """The subflow's id (with ``namespace``)."""
    blueprint: str | None = None
    """A blueprint's id (``etl.http-to-postgres``), instead of ``namespace`` and ``flowId``."""
    version: str | None = None
    """With ``blueprint``: the blueprint versions accepted, a range such as ``>=1.0,<2``."""

    @model_validator(mode="after")
    def _one_target(self) -> Subflow:
        named = self.namespace is not None or self.flow_id is not None
        if self.blueprint is None:
            if self.namespace is None or self.flow_id is None:
                raise ValueError("give namespace and flowId, or blueprint")
            if self.version is not None:
                raise ValueError("version applies to a blueprint: give blueprint too")
        elif named:
            raise ValueError(
                "give blueprint, or namespace and flowId, not both (a blueprint runs in "
                "this flow's namespace)"
            )
        if self.version is not None:
            try:
                SpecifierSet(self.version)
            except InvalidSpecifier:
                raise ValueError(
                    f"version {self.version!r} is not a range such as '>=1.0,<2'"
                ) from None
        return self


class Transition(Model):
    when: Any = True
    """A condition template; the first truthy transition is taken."""
    to: str


class MachineState(Model):
    tasks: list[TaskSpec] = Field(default_factory=list)
    transitions: list[Transition] = Field(default_factory=list)


class ItemBatch(Model):
    """How ForEachItem splits its items (Kestra's Batch): the first of regexPattern, bytes,
    partitions given wins, else ``rows`` (default 1: one subflow execution per item)."""

    rows: int = Field(default=1, ge=1)
    """Items (lines) per batch."""
    bytes: str | None = None
    """Batch size such as ``10MB``; lines are never cut."""
    partitions: int | None = Field(default=None, ge=1)
    """Number of batches (lines dealt round-robin)."""
    separator: str = "\n"
    """Written after each line of a batch."""
    regex_pattern: str | None = None
    """Group lines by the value of this pattern's first group."""


class ForEachItemBatches(ForEach):
    """Internal (part of ForEachItem): one subflow execution per batch file of the split."""

    type_name: ClassVar[str] = "plait.core.ForEachItemBatches"
    aliases: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()
    values: Any = None
    split_id: str
    """The task id of the split whose batches these are."""
    concurrency_limit: int | str = 0


class ForEachItemSubflow(Subflow):
    """Internal (part of ForEachItem): the subflow execution of one batch
    (``{{ taskrun.items }}`` is the batch file's URI)."""

    type_name: ClassVar[str] = "plait.core.ForEachItemSubflow"
    aliases: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()


class ForEachItem(_ChildFlow, _WithHandlers):
    """Split a file of items into batches and run a subflow execution for each batch.

    Kestra's ForEachItem: ``items`` is an internal-storage file with one item per line (JSON
    lines, CSV rows without header...). It runs as Kestra's tasks, ``<id>_split`` (outputs
    ``splits``, the URI of a file listing the batch URIs, and ``uris``), ``<id>_items`` (one
    ``<id>_subflow`` run per batch, all at once; outputs ``numberOfBatches`` and
    ``iterations``, the count of subflow executions by state) and ``<id>_merge`` (output
    ``subflowOutputs``: a JSON-lines file of each subflow's outputs, in batch order). In
    ``inputs``, ``{{ taskrun.items }}`` is the batch file's URI and ``{{ taskrun.iteration }}``
    its index.
    """

    type_name: ClassVar[str] = "plait.core.ForEachItem"
    aliases: ClassVar[tuple[str, ...]] = (
        _K + "ForEachItem",
        "io.kestra.core.tasks.flows.ForEachItem",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="One subflow execution per 100 orders",
            code=(
                "id: each\ntype: plait.core.ForEachItem\n"
                'items: "{{ outputs.extract.uri }}"\nbatch:\n  rows: 100\n'
                "namespace: company.team\nflowId: orders\n"
                'inputs:\n  orders: "{{ taskrun.items }}"'
            ),
        ),
    )
    namespace: str
    """The subflow's namespace."""
    flow_id: str
    """The subflow's id."""
    items: str
    """The file of items (an internal-storage URI), one item per line."""
    batch: ItemBatch = Field(default_factory=ItemBatch)
    """How items are grouped into batches."""
    _tasks: list[TaskSpec] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _expand(self) -> ForEachItem:
        self._tasks = []
        return self

    def expand(self, task_id: str) -> list[TaskSpec]:
        """The tasks this one runs as, named after its id (Kestra's ``<id>_split``...)."""
        if not self._tasks:
            batch = self.batch
            split: dict[str, Any] = {
                "id": f"{task_id}_split",
                "type": "plait.core.ForEachItemSplit",
                "items": self.items,
                "rows": batch.rows,
                "separator": batch.separator,
            }
            for key, value in (
                ("bytes", batch.bytes),
                ("partitions", batch.partitions),
                ("regexPattern", batch.regex_pattern),
            ):
                if value is not None:
                    split[key] = value
            subflow = {
                "id": f"{task_id}_subflow",
                "type": "plait.core.ForEachItemSubflow",
                "namespace": self.namespace,
                "flowId": self.flow_id,
                "inputs": self.inputs,
                "labels": self.labels,
                "wait": self.wait,
                "transmitFailed": self.transmit_failed,
            }
            if self.revision is not None:
                subflow["revision"] = self.revision
            items = {
                "id": f"{task_id}_items",
                "type": "plait.core.ForEachItemBatches",
                "splitId": f"{task_id}_split",
                "tasks": [subflow],
            }
            merge = {"id": f"{task_id}_merge", "type": "plait.core.ForEachItemMerge"}
            self._tasks = [
                TaskSpec.model_validate(split),
                TaskSpec.model_validate(items),
                TaskSpec.model_validate(merge),
            ]
        return self._tasks

    @property
    def tasks(self) -> list[TaskSpec]:
        return self._tasks

    def child_specs(self) -> list[TaskSpec]:
        return [*self._tasks, *super().child_specs()]


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
    ForEachItem,
    ForEachItemBatches,
    ForEachItemSubflow,
    StateMachine,
)
