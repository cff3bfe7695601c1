"""Step a flowable's decisions in-process: give its children's states and outputs, see what it
starts, skips, and whether it finishes or fails. Built on the SDK's :class:`~plait_sdk.FlowScope`
alone; it mirrors the core's rules for a block of tasks (one after the other, FAILED as soon as
one fails, ``errors`` then ``finally``) so a flowable behaves here as in a run."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plait_sdk._flowable import ChildRun, ChildTask, FlowableTask, FlowScope
from plait_sdk._masking import Masker
from plait_sdk._state import State
from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._render import load_renderer, render_value


@dataclass
class FakeRun:
    """A child task run of a stepped flowable; set its :attr:`state` and :attr:`outputs`.

    Example::

        run = harness.run_of("fetch")          # started by the flowable
        run.state, run.outputs = State.SUCCESS, {"code": 200}
    """

    id: str
    task_id: str
    iteration: int | None = None
    value: Any = None
    state: State = State.RUNNING
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    parent_id: str | None = None


@dataclass
class Decision:
    """What one :meth:`FlowableHarness.step` decided.

    Example::

        step = await harness.step()
        assert step.started == ["a"] and step.skipped == ["b"]
        assert step.state is None                  # still running
    """

    started: list[str] = field(default_factory=list)
    """Child task ids started in this step (``id[iteration]`` inside loops), in order."""
    skipped: list[str] = field(default_factory=list)
    """Child task ids created SKIPPED in this step."""
    state: State | None = None
    """The state the flowable ended in, ``None`` while it goes on."""
    reason: str | None = None
    """Why it ended (its error), if it said."""
    paused: bool = False
    wake_at: datetime | None = None
    started_flow: bool = False
    """Whether it asked the core to start the flow it names (a Subflow)."""
    ended_execution: State | None = None

    @property
    def finished(self) -> bool:
        return self.state is not None

    @property
    def failed(self) -> bool:
        return self.state is not None and self.state.failed


class FlowableHarness:
    """Drive one flowable task step by step, with children whose states the test sets.

    Properties are validated by the flowable's model (children as SDK
    :class:`~plait_sdk.ChildTask` entries); templates it renders with ``scope.render`` see
    ``outputs`` (its children's, by task id, and its own), ``inputs`` and ``vars`` as given.

    Example::

        harness = FlowableHarness(Both, {"first": [{"id": "a", "type": "x.A"}],
                                         "second": [{"id": "b", "type": "x.B"}]})
        step = await harness.step()
        assert step.started == ["a"]
        harness.succeed("a", {"value": 1})
        assert (await harness.step()).started == ["b"]
        harness.succeed("b")
        assert (await harness.step()).state is State.SUCCESS
    """

    def __init__(
        self,
        flowable: type[FlowableTask],
        properties: Mapping[str, Any],
        *,
        task_id: str = "flowable",
        inputs: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        clock: FakeClock | None = None,
        holding: bool = False,
    ) -> None:
        self.task = flowable.model_validate(dict(properties))
        self.task_id = task_id
        self.inputs = dict(inputs or {})
        self.variables = dict(variables or {})
        self.clock = clock or FakeClock()
        self.holding = holding
        self.runs: list[FakeRun] = []
        self.memory: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.state = State.RUNNING
        self.reason: str | None = None
        self.started_at = self.clock.now()
        self.given: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._renderer = load_renderer()
        self._masker = Masker()

    # -- the test's side ----------------------------------------------------------------------

    def run_of(self, task_id: str, *, iteration: int | None = None) -> FakeRun:
        """The child run of ``task_id`` (in ``iteration``); ``AssertionError`` if none."""
        for run in self.runs:
            if run.task_id == task_id and run.iteration == iteration:
                return run
        raise AssertionError(f"no run of child task '{task_id}' (iteration {iteration})")

    def set_state(
        self,
        task_id: str,
        state: State | str,
        outputs: Mapping[str, Any] | None = None,
        *,
        iteration: int | None = None,
        error: str | None = None,
    ) -> FakeRun:
        """Give the child run of ``task_id`` a state (and outputs), as a worker would."""
        run = self.run_of(task_id, iteration=iteration)
        run.state = State(state)
        if outputs is not None:
            run.outputs = dict(outputs)
        run.error = error
        return run

    def succeed(
        self,
        task_id: str,
        outputs: Mapping[str, Any] | None = None,
        *,
        iteration: int | None = None,
    ) -> FakeRun:
        return self.set_state(task_id, State.SUCCESS, outputs, iteration=iteration)

    def fail(self, task_id: str, error: str = "failed", *, iteration: int | None = None) -> FakeRun:
        return self.set_state(task_id, State.FAILED, iteration=iteration, error=error)

    def resume(self) -> None:
        """Resume a paused flowable (as ``plait executions resume`` does)."""
        self.memory["resumed"] = True
        self.state = State.RUNNING

    async def step(self) -> Decision:
        """Call the flowable's ``decide`` once and return what it decided."""
        decision = Decision()
        if not self.state.terminal:
            await self.task.decide(_HarnessScope(self, decision))
        if self.state.terminal:
            decision.state = self.state
            decision.reason = self.reason
        decision.paused = self.state is State.PAUSED
        return decision

    # -- what the scope reads ---------------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for run in self.runs:
            if run.state in (State.SUCCESS, State.WARNING) or run.outputs:
                outputs[run.task_id] = run.outputs
        outputs[self.task_id] = self.outputs
        return {
            "outputs": outputs,
            "inputs": self.inputs,
            "vars": self.variables,
            "task": {"id": self.task_id, "type": self.task.type_name},
        }

    async def _render(self, value: Any) -> Any:
        async def no_secret(name: str) -> str:
            raise AssertionError(f"secret('{name}'): the flowable harness has no secrets")

        return await render_value(self._renderer, self._masker, self._context(), no_secret, value)


class _HarnessScope(FlowScope):
    def __init__(self, harness: FlowableHarness, decision: Decision) -> None:
        self._h = harness
        self._d = decision

    @property
    def now(self) -> datetime:
        return self._h.clock.now()

    @property
    def started(self) -> datetime:
        return self._h.started_at

    @property
    def state(self) -> State:
        return self._h.state

    @property
    def memory(self) -> Mapping[str, Any]:
        return self._h.memory

    @property
    def outputs(self) -> Mapping[str, Any]:
        return self._h.outputs

    @property
    def holding(self) -> bool:
        return self._h.holding

    async def render(self, value: Any) -> Any:
        return await self._h._render(value)

    def child(self, task: ChildTask, *, iteration: int | None = None) -> ChildRun | None:
        for run in self._h.runs:
            if run.parent_id is None and run.task_id == task.id and run.iteration == iteration:
                return run
        return None

    def children(self, of: ChildRun | None = None) -> list[ChildRun]:
        parent = None if of is None else of.id
        return [r for r in self._h.runs if r.parent_id == parent]

    def sibling(self, task_id: str) -> ChildRun | None:
        return None  # a stepped flowable has no parent

    def remember(self, key: str, value: Any) -> None:
        self._h.memory[key] = value

    def set_outputs(self, outputs: Mapping[str, Any]) -> None:
        self._h.outputs = dict(outputs)

    def _new(self, task: ChildTask, iteration: int | None, value: Any, state: State) -> FakeRun:
        run = FakeRun(
            id=f"run-{next(self._h._ids)}",
            task_id=task.id,
            iteration=iteration,
            value=value,
            state=state,
        )
        self._h.runs.append(run)
        name = task.id if iteration is None else f"{task.id}[{iteration}]"
        (self._d.skipped if state is State.SKIPPED else self._d.started).append(name)
        return run

    async def run(
        self, task: ChildTask, *, iteration: int | None = None, value: Any = None
    ) -> ChildRun:
        found = self.child(task, iteration=iteration)
        if found is not None:
            return found
        return self._new(task, iteration, value, State.RUNNING)

    def skip(self, task: ChildTask, *, iteration: int | None = None, value: Any = None) -> ChildRun:
        found = self.child(task, iteration=iteration)
        return found or self._new(task, iteration, value, State.SKIPPED)

    async def run_tasks(
        self,
        tasks: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
        parallel: bool = False,
        concurrency: int = 0,
    ) -> State | None:
        running = 0
        waiting = failed = warning = False
        for task in tasks:
            run = self.child(task, iteration=iteration)
            if run is None:
                if self.holding or failed or (parallel and concurrency and running >= concurrency):
                    waiting = True
                    if not parallel:
                        break
                    continue
                run = await self.run(task, iteration=iteration, value=value)
            if not run.state.terminal:
                if not parallel:
                    return None
                running += 1
                continue
            if run.state.failed:
                failed = True
                if not parallel:
                    return State.FAILED
            elif run.state is State.WARNING:
                warning = True
        if running or (waiting and not failed):
            return None
        if failed:
            return State.FAILED
        return State.WARNING if warning else State.SUCCESS

    async def handle(
        self,
        state: State | None,
        errors: Sequence[ChildTask],
        finally_: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
    ) -> State | None:
        if state is None:
            return None
        handled: State | None = State.SUCCESS
        if state.failed and errors:
            handled = await self.run_tasks(errors, iteration=iteration, value=value)
        if handled is None:
            return None
        if finally_:
            closing = await self.run_tasks(finally_, iteration=iteration, value=value)
            if closing is None:
                return None
            if closing.failed:
                return State.FAILED
        return state

    def finish(
        self, state: State | None, *, reason: str | None = None, allow_failure: bool = False
    ) -> None:
        if state is None:
            return
        if state is State.FAILED and allow_failure:
            state = State.WARNING
        self._h.state = state
        self._h.reason = reason

    def pause(self) -> None:
        self._h.state = State.PAUSED

    def wake_at(self, when: datetime) -> None:
        if self._d.wake_at is None or when < self._d.wake_at:
            self._d.wake_at = when

    def end_execution(self, state: State, reason: str) -> None:
        self._h.state = state
        self._h.reason = reason
        self._d.ended_execution = state

    def start_flow(self) -> None:
        self._d.started_flow = True

    def give_properties(self, child: ChildRun, properties: Mapping[str, Any]) -> None:
        self._h.given[child.task_id] = dict(properties)
