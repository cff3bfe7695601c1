"""Core flowable tasks: decided by the executor, never run by a worker."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from plait_sdk import ChildFlow, Example, FlowableTask, FlowScope, Model, State, UserError
from pydantic import Field, PrivateAttr, field_validator, model_validator

from plait.flows import Input, TaskSpec
from plait.templating import format_duration

_K = "io.kestra.plugin.core.flow."


_FALSY_TEXT = frozenset({"", "false", "0", "no", "null", "none", "off"})


def truthy(value: Any) -> bool:
    """Template truth as flows expect it: "false", "0", "no" and empty text are false."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_TEXT
    return bool(value)


def value_key(value: Any) -> str:
    """The key of a loop value in ``outputs`` (text as is, anything else as compact JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise UserError(f"values must be a list (or a JSON array), got {text[:80]!r}") from None
        value = parsed
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    if isinstance(value, range):  # values: "{{ range(1, 5) }}"
        return list(value)
    if not isinstance(value, list | tuple):
        raise UserError(f"values must be a list, got {type(value).__name__}")
    return list(value)


class _WithHandlers(FlowableTask):
    errors: list[TaskSpec] = Field(default_factory=list)
    """Tasks run when a child task fails."""
    finally_: list[TaskSpec] = Field(default_factory=list, alias="finally")
    """Tasks run after the children, whatever their outcome."""

    async def _block(self, scope: FlowScope, tasks: list[TaskSpec], **how: Any) -> State | None:
        """``tasks``, then ``errors`` if they failed, then ``finally``."""
        state = await scope.run_tasks(tasks, **how)
        return await scope.handle(state, self.errors, self.finally_)


class Sequential(_WithHandlers):
    """Run child tasks one after the other."""

    type_name: ClassVar[str] = "plait.core.Sequential"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Sequential",)
    tasks: list[TaskSpec] = Field(min_length=1)

    async def decide(self, scope: FlowScope) -> None:
        scope.finish(await self._block(scope, self.tasks))


class Parallel(_WithHandlers):
    """Run child tasks at the same time (at most ``concurrent`` at once; 0 = all)."""

    type_name: ClassVar[str] = "plait.core.Parallel"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Parallel",)
    tasks: list[TaskSpec] = Field(min_length=1)
    concurrent: int | str = 0
    """How many children may run at once; 0 means no limit."""

    async def decide(self, scope: FlowScope) -> None:
        limit = await scope.whole_number(self.concurrent, "concurrent")
        scope.finish(await self._block(scope, self.tasks, parallel=True, concurrency=limit))


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

    async def decide(self, scope: FlowScope) -> None:
        branch = scope.memory.get("branch")
        if branch is None:
            result = truthy(await scope.render(self.condition))
            branch = "then" if result else "else"
            scope.remember("branch", branch)
            scope.set_outputs({"evaluationResult": result})
        scope.finish(await self._block(scope, self.then if branch == "then" else self.else_))


class Switch(_WithHandlers):
    """Run the tasks of the case matching ``value`` (``defaults`` when none matches)."""

    type_name: ClassVar[str] = "plait.core.Switch"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Switch",)
    value: Any
    """Rendered to text and matched against the case names."""
    cases: dict[str, list[TaskSpec]] = Field(default_factory=dict)
    defaults: list[TaskSpec] = Field(default_factory=list)

    @field_validator("defaults", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        # Kestra accepts `defaults:` left empty (null), as flows generated by its editor have.
        return [] if value is None else value

    async def decide(self, scope: FlowScope) -> None:
        if "value" not in scope.memory:
            rendered = await scope.render(self.value)
            text = rendered if isinstance(rendered, str) else value_key(rendered)
            scope.remember("value", text)
            scope.set_outputs({"value": text, "defaults": text not in self.cases})
        specs = self.cases.get(scope.memory["value"], self.defaults)
        scope.finish(await self._block(scope, specs))


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

    async def decide(self, scope: FlowScope) -> None:
        if "values" not in scope.memory:
            scope.remember("values", _as_list(await scope.render(self.values)))
        await self._each(scope)

    async def _each(self, scope: FlowScope) -> None:
        values: list[Any] = scope.memory["values"]
        limit = await scope.whole_number(self.concurrency_limit, "concurrencyLimit")
        running = 0
        waiting = failed = warning = False
        for index, value in enumerate(values):
            started = any(scope.child(t, iteration=index) is not None for t in self.tasks)
            if not started and (failed or (limit and running >= limit)):
                waiting = True
                continue
            state = await scope.run_tasks(self.tasks, iteration=index, value=value)
            if state is None:
                running += 1
            elif state.failed:
                failed = True
            elif state is State.WARNING:
                warning = True
        if running or (waiting and not failed):
            return
        main = State.FAILED if failed else State.WARNING if warning else State.SUCCESS
        scope.finish(await scope.handle(main, self.errors, self.finally_))


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

    def dependency_graph(self) -> dict[str, list[str]] | None:
        return {t.task.id: list(t.depends_on) for t in self.tasks}

    async def decide(self, scope: FlowScope) -> None:
        limit = await scope.whole_number(self.concurrent, "concurrent")
        by_id = {t.task.id: t for t in self.tasks}
        running = 0
        launchable = failed = warning = False
        for item in self.tasks:
            child = scope.child(item.task)
            if child is None:
                deps = [scope.child(by_id[d].task) for d in item.depends_on if d in by_id]
                if any(d is None or not d.state.terminal for d in deps):
                    continue
                if failed or any(d is not None and d.state.failed for d in deps):
                    continue
                if (limit and running >= limit) or scope.holding:
                    launchable = True
                    continue
            child = await scope.run(item.task)
            if not child.state.terminal:
                running += 1
            elif child.state.failed:
                failed = True
            elif child.state is State.WARNING:
                warning = True
        if running or launchable:
            return
        if not failed and any(scope.child(t.task) is None for t in self.tasks):
            failed = True  # a task whose dependency failed never ran
        main = State.FAILED if failed else State.WARNING if warning else State.SUCCESS
        scope.finish(await scope.handle(main, self.errors, self.finally_))


class AllowFailure(_WithHandlers):
    """Run child tasks; a failure among them ends this task in WARNING instead of FAILED."""

    type_name: ClassVar[str] = "plait.core.AllowFailure"
    aliases: ClassVar[tuple[str, ...]] = (_K + "AllowFailure",)
    tasks: list[TaskSpec] = Field(min_length=1)

    async def decide(self, scope: FlowScope) -> None:
        scope.finish(await self._block(scope, self.tasks), allow_failure=True)


class WorkingDirectoryCache(Model):
    """Kestra's WorkingDirectory ``cache``."""

    patterns: list[str] = Field(min_length=1)
    """Globs of the files to keep (`node_modules/**`, `.venv/**`)."""
    ttl: timedelta | str | None = None
    """How long a saved cache is restored (ISO-8601 duration); forever when unset."""


class WorkingDirectory(_WithHandlers):
    """Run child tasks sharing one temporary working directory.

    Before the first child runs, the directory gets the restored `cache` (if any, and fresh),
    the `namespaceFiles` selected and the `inputFiles`; once the children ended, the files
    matching `outputFiles` are uploaded as its `outputFiles` output; when the WorkingDirectory
    ends in SUCCESS, the files matching `cache.patterns` are saved for the next executions of
    the flow.
    """

    type_name: ClassVar[str] = "plait.core.WorkingDirectory"
    aliases: ClassVar[tuple[str, ...]] = (_K + "WorkingDirectory",)
    tasks: list[TaskSpec] = Field(min_length=1)
    input_files: dict[str, Any] | str | None = None
    """Files to create in the directory first, by relative path: inline content, or a
    `plait:///` URI of internal storage (a FILE input, an output file)."""
    namespace_files: dict[str, Any] | None = None
    """Namespace files to copy in first: `{enabled: true, include: [...], exclude: [...]}`, as
    on the script tasks."""
    cache: WorkingDirectoryCache | None = None
    """Files kept from one execution of the flow to the next: `{patterns: [...], ttl: P1D}`."""
    output_files: list[str] | str | None = None
    """Globs (relative to the directory) of the files to upload to internal storage once the
    children ended; their `plait:///` URIs are the `outputFiles` output, by relative path
    (`outputs.<id>.outputFiles['out.json']`). A pattern leaving the directory fails the task."""

    def shares_working_directory(self) -> bool:
        return True

    async def decide(self, scope: FlowScope) -> None:
        scope.finish(await self._block(scope, self.tasks))


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
    tasks: list[TaskSpec] = Field(default_factory=list)
    """Kestra's older form (deprecated): tasks run once the Pause is resumed; write them after
    the Pause instead."""

    def resume_inputs(self) -> list[Any]:
        return list(self.on_resume)

    async def decide(self, scope: FlowScope) -> None:
        if scope.memory.get("resumed"):
            if self.tasks:  # Kestra's older Pause: its child tasks run once it is resumed
                scope.finish(await scope.run_tasks(self.tasks))
            else:
                scope.finish(State.SUCCESS)
            return
        if scope.state is not State.PAUSED:
            if self.pause_duration is not None:
                scope.remember("resumeAt", (scope.now + self.pause_duration).isoformat())
            scope.pause()
        resume_at = scope.memory.get("resumeAt")
        if resume_at is None:
            return
        due = datetime.fromisoformat(resume_at)
        if scope.now < due:
            scope.wake_at(due)
            return
        scope.remember("resumed", True)
        scope.set_outputs({"onResume": {i.id: i.defaults for i in self.on_resume}})
        if self.tasks and self.behavior is PauseBehavior.RESUME:
            scope.finish(await scope.run_tasks(self.tasks))
            return
        self._expired(scope)

    def _expired(self, scope: FlowScope) -> None:
        """``pauseDuration`` passed with no resume: ``behavior`` decides (Kestra's)."""
        waited = format_duration(self.pause_duration or timedelta())
        if self.behavior is PauseBehavior.WARN:
            scope.finish(State.WARNING)
        elif self.behavior is PauseBehavior.FAIL:
            scope.fail(f"not resumed within {waited}")
        elif self.behavior is PauseBehavior.CANCEL:
            scope.end_execution(
                State.CANCELLED, f"not resumed within {waited}: the execution is cancelled"
            )
        else:
            scope.finish(State.SUCCESS)


class CheckFrequency(Model):
    """When a LoopUntil checks its condition again, and when it gives up (Kestra's
    ``LoopUntil-CheckFrequency``)."""

    interval: timedelta = timedelta(minutes=1)
    """How long to wait between two iterations."""
    max_iterations: int | None = Field(default=None, ge=1)
    """Give up after this many iterations; no limit when unset."""
    max_duration: timedelta | None = None
    """Give up once this long has passed since the loop was created; no limit when unset."""


class LoopUntil(_WithHandlers):
    """Run ``tasks`` again and again until ``condition`` renders truthy (Kestra's LoopUntil).

    The condition is checked after each round of the tasks, which it can read
    (``outputs.<id>.iterationCount`` counts the rounds). Reaching
    ``checkFrequency.maxIterations`` or ``maxDuration`` (none by default) ends the loop in
    SUCCESS, or FAILED with ``failOnMaxReached: true``. A failing child ends it FAILED.
    """

    type_name: ClassVar[str] = "plait.core.LoopUntil"
    aliases: ClassVar[tuple[str, ...]] = (_K + "LoopUntil",)
    #: LoopUntil stops once the condition holds; WaitFor goes on while it holds.
    stops_when: ClassVar[bool] = True
    condition: Any
    """Rendered after each round; truthy unless false, 0, empty, "false", "0", "no" or null."""
    tasks: list[TaskSpec] = Field(min_length=1)
    check_frequency: CheckFrequency = Field(default_factory=CheckFrequency)
    """The interval between rounds and the limits (Kestra's defaults: one minute, none)."""
    fail_on_max_reached: bool = False
    """End FAILED rather than SUCCESS once ``maxIterations`` or ``maxDuration`` is reached."""

    async def decide(self, scope: FlowScope) -> None:
        if "iterationCount" not in scope.outputs:
            scope.set_outputs({"iterationCount": 1})
        while True:
            iteration = int(scope.memory.get("iteration", 0))
            state = await scope.run_tasks(self.tasks, iteration=iteration)
            if state is None:
                return
            if state.failed:
                scope.finish(await scope.handle(State.FAILED, self.errors, self.finally_))
                return
            next_at = scope.memory.get("nextAt")
            if next_at is None:
                ended = await self._ended(scope, iteration)
                if ended is not None:
                    state, reason = ended
                    final = await scope.handle(state, self.errors, self.finally_)
                    scope.finish(final, reason=reason if final is state else None)
                    return
                next_at = (scope.now + self.check_frequency.interval).isoformat()
                scope.remember("nextAt", next_at)
            due = datetime.fromisoformat(next_at)
            if scope.now < due:
                scope.wake_at(due)
                return
            scope.remember("iteration", iteration + 1)
            scope.remember("nextAt", None)
            scope.set_outputs({"iterationCount": iteration + 2})

    async def _ended(self, scope: FlowScope, iteration: int) -> tuple[State, str | None] | None:
        """After round ``iteration``: the state to end in (and why), or ``None`` to go on."""
        holds = truthy(await scope.render(self.condition))
        if holds == self.stops_when:
            return State.SUCCESS, None
        freq = self.check_frequency
        rounds = iteration + 1
        if freq.max_iterations is not None and rounds >= freq.max_iterations:
            why = f"maxIterations ({freq.max_iterations}) reached"
        elif freq.max_duration is not None and scope.now - scope.started >= freq.max_duration:
            why = f"maxDuration ({format_duration(freq.max_duration)}) reached"
        else:
            return None
        reason = f"condition still {str(holds).lower()} after {rounds} iteration(s): {why}"
        if self.fail_on_max_reached:
            return State.FAILED, reason
        return State.SUCCESS, None


class WaitFor(LoopUntil):
    """Run ``tasks`` again and again *while* ``condition`` renders truthy (Kestra's WaitFor).

    Kestra's older form of LoopUntil, with the condition the other way round. Its defaults
    are that older task's: ``checkFrequency`` checks every second, at most 100 times and for
    one hour; reaching either ends it in SUCCESS unless ``failOnMaxReached``.
    """

    type_name: ClassVar[str] = "plait.core.WaitFor"
    aliases: ClassVar[tuple[str, ...]] = (_K + "WaitFor",)
    stops_when: ClassVar[bool] = False
    check_frequency: CheckFrequency = Field(
        default_factory=lambda: CheckFrequency(
            interval=timedelta(seconds=1), maxIterations=100, maxDuration=timedelta(hours=1)
        )
    )


class _ChildFlow(FlowableTask):
    """What a task starting executions of another flow says about it (Kestra's
    ChildFlowInterface): Subflow, ForEachItem."""

    starts_flows: ClassVar[bool] = True
    revision: int | None = None
    """The subflow's revision (the latest when unset)."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The subflow's inputs (rendered)."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Labels of the subflow execution(s): a map, or Kestra's list of ``{key, value}``."""
    wait: bool = True
    """Wait for the subflow execution(s) to end before going on."""
    transmit_failed: bool = True
    """Fail this task when a subflow execution fails (with wait)."""

    @field_validator("labels", mode="before")
    @classmethod
    def _label_pairs(cls, value: Any) -> Any:
        if isinstance(value, list) and all(
            isinstance(item, dict) and set(item) == {"key", "value"} for item in value
        ):
            return {item["key"]: item["value"] for item in value}
        return value

    def _target(self, **named: Any) -> ChildFlow:
        return ChildFlow(
            revision=self.revision,
            inputs=self.inputs,
            labels=self.labels,
            wait=self.wait,
            transmit_failed=self.transmit_failed,
            **named,
        )

    async def decide(self, scope: FlowScope) -> None:
        """Ask for the subflow execution; the core ends this run when it ends (with wait)."""
        if "child" not in scope.memory:
            scope.start_flow()
            return
        if scope.state is State.PAUSED:
            return  # waiting for a paused child to end
        if not self.wait:
            scope.finish(State.SUCCESS)


class Subflow(_ChildFlow):
    """Start another flow's execution, wait for it and take its outputs.

    Name the flow with ``namespace`` and ``flowId``, or a blueprint of the catalogue with
    ``blueprint`` (and optionally a ``blueprintVersion`` range): the blueprint's flow then runs
    in this flow's namespace (its secrets and KV pairs), as the flow ``bp_<category>_<name>``.
    """

    type_name: ClassVar[str] = "plait.core.Subflow"
    aliases: ClassVar[tuple[str, ...]] = (_K + "Subflow",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Call a blueprint of the catalogue",
            code=(
                "id: notify\ntype: plait.core.Subflow\nblueprint: ops.error-notification\n"
                'blueprintVersion: ">=1.0,<2"\ninputs:\n  webhook_url: https://hooks.example.com/x\n'
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
    blueprint_version: str | None = None
    """With ``blueprint``: the blueprint versions accepted, a range such as ``>=1.0,<2``
    (``version:`` on a task selects the task type's version, as on every task)."""
    outputs: dict[str, Any] | None = None
    """Deprecated (Kestra before 0.15): outputs to take from the subflow execution, each a
    template rendered in that execution's context (``{{ outputs.task.value }}``); used when the
    subflow's flow declares no ``outputs`` of its own."""

    @model_validator(mode="after")
    def _one_target(self) -> Subflow:
        named = self.namespace is not None or self.flow_id is not None
        if self.blueprint is None:
            if self.namespace is None or self.flow_id is None:
                raise ValueError("give namespace and flowId, or blueprint")
            if self.blueprint_version is not None:
                raise ValueError("blueprintVersion applies to a blueprint: give blueprint too")
        elif named:
            raise ValueError(
                "give blueprint, or namespace and flowId, not both (a blueprint runs in "
                "this flow's namespace)"
            )
        if self.blueprint_version is not None:
            try:
                SpecifierSet(self.blueprint_version)
            except InvalidSpecifier:
                raise ValueError(
                    f"blueprintVersion {self.blueprint_version!r} is not a range such as '>=1.0,<2'"
                ) from None
        return self

    inherit_labels: bool = False
    """Give the subflow execution this execution's labels too (``labels`` given here win)."""

    def child_flow(self) -> ChildFlow | None:
        return self._target(
            namespace=self.namespace,
            flow_id=self.flow_id,
            blueprint=self.blueprint,
            blueprint_version=self.blueprint_version,
            inherit_labels=self.inherit_labels,
            outputs=self.outputs,
        )


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

    async def decide(self, scope: FlowScope) -> None:
        if "values" not in scope.memory:
            split = scope.sibling(self.split_id)
            if split is None or split.state is not State.SUCCESS:
                scope.fail(f"no batches: {self.split_id} did not succeed")
                return
            scope.remember("values", list(split.outputs.get("uris") or []))
        await self._each(scope)
        if not scope.state.terminal:
            return  # counted once at the end: a scan of every run at each step is quadratic
        counts: dict[str, int] = {}
        for child in scope.children():
            counts[child.state.value] = counts.get(child.state.value, 0) + 1
        outputs = {"numberOfBatches": len(scope.memory["values"]), "iterations": counts}
        if scope.outputs != outputs:
            scope.set_outputs(outputs)


class ForEachItemSubflow(Subflow):
    """Internal (part of ForEachItem): the subflow execution of one batch
    (``{{ taskrun.items }}`` is the batch file's URI)."""

    type_name: ClassVar[str] = "plait.core.ForEachItemSubflow"
    aliases: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()
    value_name: ClassVar[str | None] = "items"


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

    def child_specs(self) -> list[Any]:
        return [*self._tasks, *super().child_specs()]

    def child_flow(self) -> ChildFlow | None:
        return self._target(namespace=self.namespace, flow_id=self.flow_id)

    async def decide(self, scope: FlowScope) -> None:
        """Its split, batches and merge tasks in sequence; the merge is given the subflow
        runs' outputs (in batch order) as its properties."""
        scope.finish(await self._block(scope, self._tasks))
        _, items, merge = self._tasks
        merge_run, items_run = scope.child(merge), scope.child(items)
        if merge_run is None or items_run is None or merge_run.state.terminal:
            return
        batches = sorted(scope.children(items_run), key=lambda r: r.iteration or 0)
        outputs = [r.outputs.get("outputs", {}) for r in batches]
        scope.give_properties(merge_run, {"outputs": outputs})


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

    async def decide(self, scope: FlowScope) -> None:
        if "state" not in scope.memory:
            scope.remember("state", self.initial)
            scope.remember("count", 0)
            scope.remember("transitions", [])
            scope.set_outputs({"state": self.initial, "transitions": []})
        while True:
            current: str = scope.memory["state"]
            count: int = scope.memory["count"]
            state = await scope.run_tasks(self.states[current].tasks, iteration=count)
            if state is None:
                return
            if state.failed:
                scope.fail(f"state '{current}' failed")
                return
            if current in self.finals:
                scope.finish(State.WARNING if state is State.WARNING else State.SUCCESS)
                return
            target = None
            for transition in self.states[current].transitions:
                if truthy(await scope.render(transition.when)):
                    target = transition.to
                    break
            if target is None:
                scope.fail(f"no transition out of state '{current}' matched")
                return
            if count + 1 > self.max_transitions:
                scope.fail(f"more than {self.max_transitions} transitions (maxTransitions)")
                return
            done = [
                *scope.memory["transitions"],
                {"from": current, "to": target, "date": scope.now.isoformat()},
            ]
            scope.remember("transitions", done)
            scope.remember("state", target)
            scope.remember("count", count + 1)
            scope.set_outputs({"state": target, "transitions": list(done)})


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
