"""The executor: a deterministic state machine from (flow, execution, now) to decisions.

Each :meth:`Executor.step` walks the flow's task tree against the task runs that exist, creates
the runs that are due, decides the state of flowable runs from their children, and returns what
changed and which runnable task runs a worker must now start. Given the same flow, execution,
time and random seed it makes the same decisions; it does no I/O except through the injected
``render`` callable (templates, which may read secrets). Workers report back through
:meth:`Executor.complete`, and the runner persists the changes of every step before acting on
them.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plait_sdk import UserError

from plait.builtin import flowable as fl
from plait.engine._context import kestra_date, run_envs, run_globals
from plait.engine._restart import RESTARTED_LABEL, WORKING_DIRECTORY, plan_restart
from plait.engine._retry import next_attempt_at
from plait.engine._templated import retry_for, timeout_of
from plait.flows import (
    Flow,
    FlowableTask,
    Retry,
    State,
    TaskSpec,
    all_task_specs,
    nested_inputs,
)
from plait.records import Attempt, Execution, TaskRun
from plait.templating import TemplateError, format_duration

Render = Callable[[dict[str, Any], Any], Awaitable[Any]]

#: The core's Exit task (plait.builtin.basic.Exit) and its states as the engine's.
EXIT_TYPE = "plait.core.Exit"
_EXIT_STATES = {
    "SUCCESS": State.SUCCESS,
    "WARNING": State.WARNING,
    "KILLED": State.KILLED,
    "FAILED": State.FAILED,
    "CANCELED": State.CANCELLED,
}

#: Context key of the loop values of a task run (see Executor.context_for).
LOOP_VALUES = "plait:loop-values"

SET_VARIABLES_TYPE = "plait.core.SetVariables"
_VARIABLE_TYPES = frozenset({SET_VARIABLES_TYPE, "plait.core.UnsetVariables"})


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``; nested maps are merged rather than replaced (as Kestra)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_FALSY_TEXT = frozenset({"", "false", "0", "no", "null", "none", "off"})


def truthy(value: Any) -> bool:
    """Template truth as flows expect it: "false", "0", "no" and empty text are false."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_TEXT
    return bool(value)


@dataclass
class Step:
    """What one executor step decided."""

    changed: list[TaskRun] = field(default_factory=list)
    start: list[TaskRun] = field(default_factory=list)
    subflows: list[TaskRun] = field(default_factory=list)
    cancel: list[TaskRun] = field(default_factory=list)
    """Running task runs to cancel (under a flowable task that timed out)."""
    wake_at: datetime | None = None
    execution_changed: bool = False


class Executor:
    """Decides the next moves of one execution of one flow."""

    def __init__(
        self,
        flow: Flow,
        execution: Execution,
        *,
        render: Render,
        rng: random.Random | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.flow = flow
        self.execution = execution
        #: The inputs templates see (SECRET ones decrypted); the stored ones stay sealed.
        self.inputs = execution.inputs if inputs is None else inputs
        self._render_fn = render
        self.rng = rng or random.Random()
        #: The execution's state once decided, while its afterExecution tasks run.
        self.decided: State | None = None
        self._after_ids = {s.id for s in all_task_specs(flow.after_execution)}
        self.specs: dict[str, TaskSpec] = {
            s.id: s
            for s in all_task_specs(
                [*flow.tasks, *flow.errors, *flow.finally_, *flow.after_execution]
            )
        }
        self._item_subflows = {
            s.id for s in self.specs.values() if isinstance(s.flowable, fl.ForEachItemSubflow)
        }
        self.runs: dict[str, TaskRun] = {}
        self._by_key: dict[tuple[str | None, int | None, str], TaskRun] = {}
        self.outputs: dict[str, Any] = {}
        for run in execution.task_runs:
            self._index(run)
            self._record_outputs(run)
        self._cursors: dict[tuple[str | None, int | None, int], tuple[int, bool]] = {}
        #: Runs that were PAUSED at some point (the only ones _only_paused has to look at).
        self._maybe_paused = [r for r in execution.task_runs if r.state is State.PAUSED]
        self._changed: dict[str, TaskRun] = {}
        self._execution_changed = False
        self._now = datetime.min
        self._step = Step()

    # -- indexes -------------------------------------------------------------------------------

    def _index(self, run: TaskRun) -> None:
        self.runs[run.id] = run
        self._by_key[(run.parent_id, run.iteration, run.task_id)] = run

    def _record_outputs(self, run: TaskRun) -> None:
        if run.state not in (State.SUCCESS, State.WARNING) or not run.outputs:
            if run.state in (State.SUCCESS, State.WARNING) and run.task_id not in self.outputs:
                self.outputs.setdefault(run.task_id, {})
            return
        self.publish_outputs(run)

    def publish_outputs(self, run: TaskRun) -> None:
        """Make ``run.outputs`` visible as ``outputs.<taskId>`` (also while it runs: a loop's
        ``iterationCount`` is read by its own tasks)."""
        # Inside loops, outputs are keyed by the loop values, outermost first, as in Kestra:
        # outputs.task['outer']['inner'].value.
        values = [c.value for c in (run, *self.ancestors(run)) if c.value is not None]
        if not values:
            self.outputs[run.task_id] = run.outputs
            return
        level = self.outputs.setdefault(run.task_id, {})
        for value in reversed(values[1:]):
            level = level.setdefault(value_key(value), {})
        level[value_key(values[0])] = run.outputs

    def spec_of(self, run: TaskRun) -> TaskSpec:
        return self.specs[run.task_id]

    def ancestors(self, run: TaskRun) -> list[TaskRun]:
        """Parent runs, nearest first."""
        found = []
        current = run
        while current.parent_id is not None:
            current = self.runs[current.parent_id]
            found.append(current)
        return found

    def value_of(self, run: TaskRun) -> Any:
        for candidate in (run, *self.ancestors(run)):
            if candidate.value is not None:
                return candidate.value
        return None

    def iteration_of(self, run: TaskRun) -> int | None:
        for candidate in (run, *self.ancestors(run)):
            if candidate.iteration is not None:
                return candidate.iteration
        return None

    # -- template context ------------------------------------------------------------------------

    def context_for(self, run: TaskRun | None) -> dict[str, Any]:
        ex = self.execution
        ctx: dict[str, Any] = {
            "flow": {
                "id": self.flow.id,
                "namespace": self.flow.namespace,
                "revision": ex.flow_revision,
            },
            "execution": {
                "id": ex.id,
                "startDate": kestra_date(ex.created),
                "originalId": ex.original_id or ex.id,
                "state": (self.decided or ex.state).value,
                "retryAttempt": ex.retry_attempt,
            },
            "inputs": nested_inputs(self.inputs),
            "vars": self.flow.variables if ex.variables is None else ex.variables,
            "outputs": self.outputs,
            "labels": ex.labels,
            "trigger": ex.trigger or {},
            "envs": run_envs(),
            "globals": run_globals(),
        }
        if run is not None:
            spec = self.specs.get(run.task_id)
            ctx["task"] = {"id": run.task_id, "type": spec.written_type if spec else None}
            ctx["taskrun"] = {
                "id": run.id,
                "startDate": kestra_date(run.history[0].date if run.history else self._now),
                "value": self.value_of(run),
                "iteration": self.iteration_of(run),
                # Kestra counts the attempts before the running one (0 on the first try).
                "attemptsCount": max(len(run.attempts) - 1, 0),
                "parentId": run.parent_id,
            }
            # The loop values this run's outputs are keyed by (outermost first), for
            # currentEachOutput(); not a valid name, so templates cannot reach it directly.
            ancestors = self.ancestors(run)
            ctx[LOOP_VALUES] = [c.value for c in reversed([run, *ancestors]) if c.value is not None]
            if run.task_id in self._item_subflows:
                ctx["taskrun"]["items"] = self.value_of(run)  # the batch file (ForEachItem)
            parents = []
            for parent in ancestors:
                if parent.value is not None or parent.iteration is not None:
                    parents.append(
                        {
                            "taskrun": {
                                "id": parent.id,
                                "value": parent.value,
                                "iteration": parent.iteration,
                            },
                            "outputs": parent.outputs,
                        }
                    )
            ctx["parents"] = parents
            if parents:
                ctx["parent"] = parents[0]
            # Inside a WorkingDirectory, Kestra's worker task: its task run is workerTaskrun.
            worker = next(
                (a for a in ancestors if self.specs[a.task_id].type == WORKING_DIRECTORY), None
            )
            if worker is not None:
                ctx["workerTaskrun"] = {
                    "id": worker.id,
                    "startDate": kestra_date(worker.history[0].date if worker.history else None),
                    "value": self.value_of(worker),
                    "iteration": self.iteration_of(worker),
                    "attemptsCount": 0,
                    "parentId": worker.parent_id,
                }
        return ctx

    async def render(self, run: TaskRun | None, value: Any) -> Any:
        return await self._render_fn(self.context_for(run), value)

    # -- changes -------------------------------------------------------------------------------

    def _touch(self, run: TaskRun) -> None:
        self._changed[run.id] = run

    def _set(self, run: TaskRun, state: State) -> None:
        if state is State.PAUSED:
            self._maybe_paused.append(run)
        if run.state is not state:
            run.transition(state, self._now)
            self._touch(run)
            if state.terminal:
                self._record_outputs(run)

    def _set_execution(self, state: State) -> None:
        if self.execution.state is not state:
            self.execution.transition(state, self._now)
            self._execution_changed = True

    def _wake(self, at: datetime) -> None:
        if self._step.wake_at is None or at < self._step.wake_at:
            self._step.wake_at = at

    def _create(
        self, spec: TaskSpec, parent: TaskRun | None, iteration: int | None, value: Any
    ) -> TaskRun:
        run = TaskRun(
            execution_id=self.execution.id,
            task_id=spec.id,
            parent_id=parent.id if parent else None,
            iteration=iteration,
            value=value,
        )
        run.transition(State.CREATED, self._now)
        self.execution.task_runs.append(run)
        self._index(run)
        self._touch(run)
        return run

    def _fail(self, run: TaskRun, message: str) -> None:
        run.error = message
        self._end(run, State.FAILED)

    def _end(self, run: TaskRun, state: State, *, allow_failure: bool = False) -> None:
        """End ``run`` in ``state`` as its task tolerates it: ``allowFailure`` turns FAILED into
        WARNING, then ``allowWarning`` turns WARNING into SUCCESS."""
        spec = self.specs.get(run.task_id)
        if state is State.FAILED and (allow_failure or (spec is not None and spec.allow_failure)):
            state = State.WARNING
        if state is State.WARNING and spec is not None and spec.allow_warning:
            state = State.SUCCESS
        self._set(run, state)

    # -- the step ------------------------------------------------------------------------------

    async def step(self, now: datetime) -> Step:
        """Advance the execution as far as it can go without waiting for a worker."""
        self._now = now
        self._step = Step()
        ex = self.execution
        if not ex.state.terminal:
            if ex.state in (State.CREATED, State.QUEUED):
                self._set_execution(State.RUNNING)
            if ex.kill_requested:
                self._kill()
            elif ex.exit_state is not None:
                state = self._exit()
                if state is not None and self.flow.after_execution:
                    state = await self._after_execution(state)
                if state is not None:
                    self._set_execution(state)
            else:
                state = await self._block(
                    self.flow.tasks, self.flow.errors, self.flow.finally_, None, None, None
                )
                exited = ex.exit_state is not None  # a Pause's CANCEL decided during this step
                if exited:
                    state = self._exit()
                if state is not None and self.flow.after_execution:
                    state = await self._after_execution(state)
                if state is not None:
                    self._set_execution(state)
                elif not exited:
                    held = ex.pause_requested and not self._working()
                    paused = held or self._only_paused()
                    self._set_execution(State.PAUSED if paused else State.RUNNING)
        step = self._step
        step.changed = list(self._changed.values())
        step.execution_changed = self._execution_changed or bool(step.changed)
        self._changed = {}
        self._execution_changed = False
        return step

    def _exit(self) -> State | None:
        """After an Exit task: once no runnable task (nor waited-for subflow) is still running,
        the Exit run's ancestors take the exit state, every other unfinished task run ends
        KILLED, and the execution's state is the exit state."""
        ex = self.execution
        assert ex.exit_state is not None
        pending = [
            r
            for r in self.runs.values()
            if not r.state.terminal and r.task_id not in self._after_ids
        ]
        for run in pending:
            if run.state is State.RUNNING and (
                not self._is_flowable(self.specs[run.task_id]) or "child" in run.scratch
            ):
                return None  # left to finish, as Kestra does (only KILLED cancels them)
        exit_run = self.runs.get(ex.exit_run or "")
        ancestors = {a.id for a in self.ancestors(exit_run)} if exit_run else set()
        for run in pending:
            if run.id in ancestors:
                self._set(run, ex.exit_state)
            else:
                run.error = run.error or "not finished when the execution exited"
                self._set(run, State.KILLED)
        return ex.exit_state

    async def _after_execution(self, decided: State) -> State | None:
        """Run the flow's ``afterExecution`` tasks once its state is decided; they see that
        state (``execution.state``) and whatever they do, it stays the execution's state."""
        self.decided = decided
        done = await self._scope(self.flow.after_execution, None, None, None, False, 0)
        return None if done is None else decided

    def _working(self) -> bool:
        """Whether a task run is still at work: a runnable task's attempt, or a subflow's
        running child (a manual pause waits for them to end)."""
        for run in self.runs.values():
            if run.state is not State.RUNNING:
                continue
            spec = self.specs.get(run.task_id)
            if spec is not None and (not self._is_flowable(spec) or "child" in run.scratch):
                return True
        return False

    def _only_paused(self) -> bool:
        if not any(r.state is State.PAUSED for r in self._maybe_paused):
            return False
        active = [r for r in self.runs.values() if not r.state.terminal]
        paused = [r for r in active if r.state is State.PAUSED]
        if not paused:
            return False
        ancestors = {a.id for r in paused for a in self.ancestors(r)}
        return all(r.state is State.PAUSED or r.id in ancestors for r in active)

    async def _block(
        self,
        main: list[TaskSpec],
        errors: list[TaskSpec],
        finally_: list[TaskSpec],
        parent: TaskRun | None,
        iteration: int | None,
        value: Any,
        *,
        parallel: bool = False,
        concurrency: int = 0,
    ) -> State | None:
        state = await self._scope(main, parent, iteration, value, parallel, concurrency)
        return await self._after(state, errors, finally_, parent, iteration, value)

    async def _after(
        self,
        state: State | None,
        errors: list[TaskSpec],
        finally_: list[TaskSpec],
        parent: TaskRun | None,
        iteration: int | None,
        value: Any,
    ) -> State | None:
        if state is None:
            return None
        if state.failed and errors:
            handled = await self._scope(errors, parent, iteration, value, False, 0)
            if handled is None:
                return None
        if finally_:
            closing = await self._scope(finally_, parent, iteration, value, False, 0)
            if closing is None:
                return None
            if closing.failed:
                return State.FAILED
        return state

    async def _scope(
        self,
        specs: list[TaskSpec],
        parent: TaskRun | None,
        iteration: int | None,
        value: Any,
        parallel: bool,
        concurrency: int,
    ) -> State | None:
        parent_id = parent.id if parent else None
        running = 0
        waiting = failed = warning = False
        # A sequential scope resumes after the tasks it already saw end well (they stay ended
        # for this executor's life), so a long flow costs O(1) per step rather than O(tasks).
        cursor_key = (parent_id, iteration, id(specs))
        start = 0
        if not parallel:
            start, warning = self._cursors.get(cursor_key, (0, False))
        for index in range(start, len(specs)):
            spec = specs[index]
            if spec.disabled:
                continue
            run = self._by_key.get((parent_id, iteration, spec.id))
            if run is None:
                held = self.execution.pause_requested  # a manual pause: nothing new starts
                if held or failed or (parallel and concurrency and running >= concurrency):
                    waiting = True
                    if not parallel:
                        break
                    continue
                run = await self._launch(spec, parent, iteration, value)
            if not run.state.terminal:
                await self._advance(spec, run)
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
            if not parallel:
                self._cursors[cursor_key] = (index + 1, warning)
        if running or (waiting and not failed):
            return None
        if failed:
            return State.FAILED
        return State.WARNING if warning else State.SUCCESS

    async def _launch(
        self, spec: TaskSpec, parent: TaskRun | None, iteration: int | None, value: Any
    ) -> TaskRun:
        run = self._create(spec, parent, iteration, value)
        if spec.run_if is not None:
            try:
                condition = await self.render(run, spec.run_if)
            except (TemplateError, UserError) as error:
                self._fail(run, f"runIf of task '{spec.id}': {error}")
                return run
            if not truthy(condition):
                self._set(run, State.SKIPPED)
                return run
        if self._is_flowable(spec):
            self._set(run, State.RUNNING)
        else:
            self._start_attempt(run)
        return run

    def retry_of(self, spec: TaskSpec) -> Retry | None:
        """The task's own retry, else the flow's ``RETRY_FAILED_TASK`` retry."""
        return spec.retry or self.flow.task_retry

    def _is_flowable(self, spec: TaskSpec) -> bool:
        return isinstance(spec.flowable, FlowableTask)

    def _start_attempt(self, run: TaskRun) -> None:
        if self.execution.pause_requested:
            return  # a manual pause: nothing new starts (the run waits, CREATED or RETRYING)
        run.attempts.append(
            Attempt(number=len(run.attempts) + 1, state=State.RUNNING, started=self._now)
        )
        run.retry_at = None
        run.transition(State.RUNNING, self._now)
        self._touch(run)
        self._step.start.append(run)

    # -- advancing a run -------------------------------------------------------------------------

    async def _advance(self, spec: TaskSpec, run: TaskRun) -> None:
        if not self._is_flowable(spec):
            if run.state is State.RETRYING and run.retry_at is not None:
                if self._now >= run.retry_at:
                    self._start_attempt(run)
                else:
                    self._wake(run.retry_at)
            elif run.state is State.CREATED:
                self._start_attempt(run)
            return
        model = spec.flowable
        if spec.timeout is not None:
            try:
                timeout = await timeout_of(self.render, run, spec)
            except (TemplateError, UserError) as error:
                self._fail(run, f"task '{spec.id}': {error}")
                return
            if timeout is not None and self._flowable_timed_out(run, timeout):
                return
        try:
            handler = _HANDLERS[type(model)]
        except KeyError:
            self._fail(run, f"no executor support for flowable type {spec.type}")
            return
        try:
            await handler(self, spec, run, model)
        except (TemplateError, UserError) as error:
            self._fail(run, f"task '{spec.id}': {error}")

    def _flowable_timed_out(self, run: TaskRun, timeout: timedelta) -> bool:
        """A flowable task past its ``timeout``: its unfinished children are killed (running
        ones cancelled by the runner) and it fails once none is left running."""
        started = next((t.date for t in run.history if t.state is State.RUNNING), None)
        if started is None:
            return False
        deadline = started + timeout
        if self._now < deadline and "timedOut" not in run.scratch:
            self._wake(deadline)
            return False
        if "timedOut" not in run.scratch:
            run.scratch["timedOut"] = format_duration(timeout)
            self._touch(run)
        still_running = False
        for child in self.descendants(run):
            if child.state.terminal:
                continue
            child_spec = self.specs[child.task_id]
            if not self._is_flowable(child_spec) and child.state is State.RUNNING:
                still_running = True
                if all(c.id != child.id for c in self._step.cancel):
                    self._step.cancel.append(child)
                continue
            self._set(child, State.KILLED)
        if not still_running:
            self._fail(run, f"timed out after {run.scratch['timedOut']}")
        return True

    def descendants(self, run: TaskRun) -> list[TaskRun]:
        return [r for r in self.runs.values() if any(a.id == run.id for a in self.ancestors(r))]

    async def _finish(
        self, run: TaskRun, state: State | None, *, allow_failure: bool = False
    ) -> None:
        if state is None:
            return
        self._end(run, state, allow_failure=allow_failure)

    async def _limit(self, run: TaskRun, value: Any, key: str) -> int:
        if key not in run.scratch:
            rendered = await self.render(run, value)
            try:
                run.scratch[key] = max(int(rendered), 0)
            except (TypeError, ValueError):
                raise UserError(f"{key} must be a whole number, got {rendered!r}") from None
            self._touch(run)
        return int(run.scratch[key])

    # -- worker reports ------------------------------------------------------------------------

    def complete(
        self,
        run_id: str,
        *,
        now: datetime,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        killed: bool = False,
    ) -> TaskRun:
        """Record the end of a worker's attempt; retries are scheduled here."""
        self._now = now
        run = self.runs[run_id]
        spec = self.specs[run.task_id]
        attempt = run.attempts[-1]
        attempt.ended = now
        if error is None and not killed and spec.type in _VARIABLE_TYPES:
            error = self._update_variables(spec.type, outputs or {})
        if killed:
            attempt.state = State.KILLED
            run.error = error or "killed"
            self._set(run, State.KILLED)
        elif error is None and spec.type == EXIT_TYPE:
            attempt.state = State.SUCCESS
            run.outputs = outputs or {}
            self._exit_with(run, _EXIT_STATES[str(run.outputs.get("state", "SUCCESS"))])
        elif error is None:
            attempt.state = State.SUCCESS
            run.outputs = outputs or {}
            run.error = None
            policy = retry_for(self.retry_of(spec), run)
            warn = policy is not None and policy.warning_on_retry and len(run.attempts) > 1
            self._end(run, State.WARNING if warn else State.SUCCESS)
        else:
            attempt.state = State.FAILED
            attempt.error = error
            run.error = error
            first = run.attempts[0].started or now
            due = next_attempt_at(
                retry_for(self.retry_of(spec), run),
                attempts_made=len(run.attempts),
                first_started=first,
                now=now,
                rng=self.rng,
            )
            if due is not None and not self.execution.kill_requested:
                run.retry_at = due
                self._set(run, State.RETRYING)
            else:
                self._end(run, State.FAILED)
        self._touch(run)
        return run

    def _update_variables(self, type_name: str, outputs: dict[str, Any]) -> str | None:
        """SetVariables / UnsetVariables ended: change the execution's variables (``vars``),
        or say why not (then the task run fails, and nothing changed)."""
        ex = self.execution
        current = copy.deepcopy(self.flow.variables if ex.variables is None else ex.variables)
        if type_name == SET_VARIABLES_TYPE:
            given = dict(outputs.get("variables") or {})
            if not outputs.get("overwrite", True):
                existing = sorted(k for k in given if k in current)
                if existing:
                    return "overwrite is false and these variables already exist: " + ", ".join(
                        existing
                    )
            ex.variables = _deep_merge(current, given)
        else:
            for name in outputs.get("variables") or []:
                *parents, leaf = str(name).split(".")
                scope: Any = current
                for part in parents:
                    scope = scope.get(part) if isinstance(scope, dict) else None
                if not isinstance(scope, dict) or leaf not in scope:
                    if outputs.get("ignoreMissing"):
                        continue
                    return f"variable '{name}' is not set"
                del scope[leaf]
            ex.variables = current
        self._execution_changed = True
        return None

    def rebuild_variables(self) -> None:
        """The variables (``vars``) as this execution's ended task runs left them: for a replay
        from a task run, whose copied SetVariables / UnsetVariables runs are not run again."""
        self.execution.variables = None
        changes = [
            r
            for r in self.runs.values()
            if r.task_id in self.specs
            and self.specs[r.task_id].type in _VARIABLE_TYPES
            and r.state in (State.SUCCESS, State.WARNING)
            and r.history
        ]
        for run in sorted(changes, key=lambda r: r.history[-1].date):
            self._update_variables(self.specs[run.task_id].type, run.outputs)

    def _exit_with(self, run: TaskRun, state: State) -> None:
        """An Exit task ended: KILLED kills the execution now; any other state ends it once
        what is running has finished (see ``_exit``)."""
        if state.failed:
            run.error = f"Exit: the execution ends {state.value}"
        self._set(run, state)
        if state is State.KILLED:
            self.execution.error = f"killed by the Exit task '{run.task_id}'"
            self.request_kill()
            return
        self.execution.exit_state = state
        self.execution.exit_run = run.id
        self._execution_changed = True

    def complete_subflow(
        self, run_id: str, *, child_id: str, state: State, outputs: dict[str, Any], now: datetime
    ) -> None:
        self._now = now
        run = self.runs[run_id]
        if run.state.terminal:
            return  # killed meanwhile: the child's late report changes nothing
        if not state.terminal:
            # The child paused (an approval...): this run waits PAUSED until the child ends;
            # whoever finishes the child reports back (Runner._notify_parent).
            run.scratch["child"] = child_id
            self._set(run, State.PAUSED)
            return
        model = self.specs[run.task_id].flowable
        run.outputs = {"executionId": child_id, "state": state.value, "outputs": outputs}
        if state.failed and getattr(model, "transmit_failed", True):
            run.error = f"subflow execution {child_id} ended {state.value}"
            self._end(run, State.FAILED)
        else:
            self._end(run, State.WARNING if state is State.WARNING else State.SUCCESS)

    def subflow_started(self, run_id: str, child_id: str) -> None:
        run = self.runs[run_id]
        run.scratch["child"] = child_id
        run.outputs = {"executionId": child_id}
        self._touch(run)

    # -- control ---------------------------------------------------------------------------------

    def request_kill(self) -> None:
        self.execution.kill_requested = True
        self._execution_changed = True

    def _kill(self) -> None:
        still_running = False
        for run in self.runs.values():
            if run.state.terminal:
                continue
            spec = self.specs.get(run.task_id)
            if spec is not None and not self._is_flowable(spec) and run.state is State.RUNNING:
                still_running = True  # the runner cancels it; its report ends it as KILLED
                continue
            self._set(run, State.KILLED)
        final = self.execution.kill_state or State.KILLED  # a breached SLA's FAILED/CANCELLED
        self._set_execution(State.KILLING if still_running else final)

    def request_pause(self) -> None:
        self.execution.pause_requested = True
        self._execution_changed = True

    def resume(self, now: datetime, outputs: dict[str, Any] | None = None) -> list[TaskRun]:
        """Resume every paused task run (with the resume inputs as its outputs), and an
        execution paused by hand."""
        self._now = now
        if self.execution.pause_requested:
            self.execution.pause_requested = False
            self._execution_changed = True
        resumed = []
        for run in self.paused_runs():
            if run.state is State.PAUSED:
                run.scratch["resumed"] = True
                run.outputs = {"onResume": dict(outputs or {})}
                self._touch(run)
                resumed.append(run)
        return resumed

    def paused_runs(self) -> list[TaskRun]:
        """Paused runs a resume applies to (a Subflow waiting for its paused child is not one:
        the child is resumed, and reports back when it ends)."""
        return [
            r
            for r in self.runs.values()
            if r.state is State.PAUSED
            and not isinstance(self.specs[r.task_id].flowable, fl.Subflow)
        ]

    def subflow_waits(self) -> list[TaskRun]:
        """Subflow runs waiting for a paused child."""
        return [
            r
            for r in self.runs.values()
            if r.state is State.PAUSED and isinstance(self.specs[r.task_id].flowable, fl.Subflow)
        ]

    def restart(self, now: datetime) -> tuple[list[TaskRun], list[TaskRun]]:
        """Restart as Kestra does (plait.engine._restart): failed runs and their ancestors are
        reopened, a new attempt for each runnable one, other outputs kept; handler runs and
        the runs inside a reopened WorkingDirectory are removed. Returns (reopened, removed)."""
        self._now = now
        plan = plan_restart(self.flow, self.specs, self.runs)
        for run in plan.removed:
            del self.runs[run.id]
        if plan.removed:
            gone = {r.id for r in plan.removed}
            self.execution.task_runs = [r for r in self.execution.task_runs if r.id not in gone]
            self._by_key = {k: r for k, r in self._by_key.items() if r.id not in gone}
            self._maybe_paused = [r for r in self._maybe_paused if r.id not in gone]
            self.outputs = {}
            for run in self.execution.task_runs:
                self._record_outputs(run)
        self._cursors = {}
        for run in plan.reopened:
            spec = self.specs[run.task_id]
            run.error = None
            run.scratch.pop("timedOut", None)
            if self._is_flowable(spec):
                run.transition(State.RUNNING, now)
            else:
                run.transition(State.CREATED, now)
            self._touch(run)
        if plan.reopened or plan.removed:
            self.execution.attempt += 1
            self.execution.labels = {**self.execution.labels, RESTARTED_LABEL: "true"}
            self.execution.kill_requested = False
            self.execution.pause_requested = False
            self.execution.exit_state = self.execution.exit_run = None
            self.execution.kill_state = None
            self.execution.error = None
            self._set_execution(State.RUNNING)
        return plan.reopened, plan.removed

    def recover(self, now: datetime) -> list[TaskRun]:
        """After a crash: runnable runs that were RUNNING get a fresh attempt on the next step."""
        self._now = now
        lost = []
        for run in self.runs.values():
            spec = self.specs.get(run.task_id)
            if spec is None or self._is_flowable(spec) or run.state is not State.RUNNING:
                continue
            if run.attempts:
                run.attempts[-1].state = State.FAILED
                run.attempts[-1].ended = now
                run.attempts[-1].error = "the process running this attempt stopped"
            run.transition(State.CREATED, now)
            self._touch(run)
            lost.append(run)
        return lost

    def drain_changes(self) -> list[TaskRun]:
        changed = list(self._changed.values())
        self._changed = {}
        return changed


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


# -- flowable handlers ---------------------------------------------------------------------------


async def _sequential(ex: Executor, spec: TaskSpec, run: TaskRun, m: Any) -> None:
    state = await ex._block(m.tasks, m.errors, m.finally_, run, None, None)
    await ex._finish(run, state, allow_failure=isinstance(m, fl.AllowFailure))


async def _parallel(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.Parallel) -> None:
    limit = await ex._limit(run, m.concurrent, "concurrent")
    state = await ex._block(
        m.tasks, m.errors, m.finally_, run, None, None, parallel=True, concurrency=limit
    )
    await ex._finish(run, state)


async def _if(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.If) -> None:
    branch = run.scratch.get("branch")
    if branch is None:
        result = truthy(await ex.render(run, m.condition))
        branch = "then" if result else "else"
        run.scratch["branch"] = branch
        run.outputs = {"evaluationResult": result}
        ex._touch(run)
    specs = m.then if branch == "then" else m.else_
    state = await ex._block(specs, m.errors, m.finally_, run, None, None)
    await ex._finish(run, state)


async def _switch(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.Switch) -> None:
    if "value" not in run.scratch:
        rendered = await ex.render(run, m.value)
        text = rendered if isinstance(rendered, str) else value_key(rendered)
        run.scratch["value"] = text
        run.outputs = {"value": text, "defaults": text not in m.cases}
        ex._touch(run)
    value = run.scratch["value"]
    specs = m.cases.get(value, m.defaults)
    state = await ex._block(specs, m.errors, m.finally_, run, None, None)
    await ex._finish(run, state)


async def _for_each(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.ForEach) -> None:
    if "values" not in run.scratch:
        run.scratch["values"] = _as_list(await ex.render(run, m.values))
        ex._touch(run)
    values: list[Any] = run.scratch["values"]
    limit = await ex._limit(run, m.concurrency_limit, "concurrencyLimit")
    running = 0
    waiting = failed = warning = False
    for index, value in enumerate(values):
        started = any((run.id, index, s.id) in ex._by_key for s in m.tasks)
        if not started and (failed or (limit and running >= limit)):
            waiting = True
            continue
        state = await ex._scope(m.tasks, run, index, value, False, 0)
        if state is None:
            running += 1
        elif state.failed:
            failed = True
        elif state is State.WARNING:
            warning = True
    if running or (waiting and not failed):
        return
    main = State.FAILED if failed else State.WARNING if warning else State.SUCCESS
    state = await ex._after(main, m.errors, m.finally_, run, None, None)
    await ex._finish(run, state)


async def _for_each_item(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.ForEachItem) -> None:
    """ForEachItem: its split, batches and merge tasks in sequence; the merge is given the
    subflow runs' outputs (in batch order) by the engine, as properties of its run."""
    await _sequential(ex, spec, run, m)
    items_id, merge_id = f"{spec.id}_items", f"{spec.id}_merge"
    merge = ex._by_key.get((run.id, None, merge_id))
    items = ex._by_key.get((run.id, None, items_id))
    if merge is None or items is None or "properties" in merge.scratch:
        return
    batches = sorted(
        (r for r in ex.runs.values() if r.parent_id == items.id), key=lambda r: r.iteration or 0
    )
    merge.scratch["properties"] = {"outputs": [r.outputs.get("outputs", {}) for r in batches]}
    ex._touch(merge)


async def _for_each_item_batches(
    ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.ForEachItemBatches
) -> None:
    """ForEachItem's ``<id>_items``: a ForEach over the batch files its ``<id>_split`` made."""
    if "values" not in run.scratch:
        split = ex._by_key.get((run.parent_id, run.iteration, m.split_id))
        if split is None or split.state is not State.SUCCESS:
            ex._fail(run, f"no batches: {m.split_id} did not succeed")
            return
        run.scratch["values"] = list(split.outputs.get("uris") or [])
        ex._touch(run)
    await _for_each(ex, spec, run, m)
    if not run.state.terminal:
        return  # counted once at the end: a scan of every run at each step is quadratic
    children = [r for r in ex.runs.values() if r.parent_id == run.id]
    counts: dict[str, int] = {}
    for child in children:
        counts[child.state.value] = counts.get(child.state.value, 0) + 1
    outputs = {"numberOfBatches": len(run.scratch["values"]), "iterations": counts}
    if run.outputs != outputs:
        run.outputs = outputs
        ex.publish_outputs(run)
        ex._touch(run)


async def _dag(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.Dag) -> None:
    limit = await ex._limit(run, m.concurrent, "concurrent")
    by_id = {t.task.id: t for t in m.tasks}
    running = 0
    launchable = failed = warning = False
    for item in m.tasks:
        child = ex._by_key.get((run.id, None, item.task.id))
        if child is None:
            deps = [ex._by_key.get((run.id, None, d)) for d in item.depends_on if d in by_id]
            if any(d is None or not d.state.terminal for d in deps):
                continue
            if failed or any(d is not None and d.state.failed for d in deps):
                continue
            if (limit and running >= limit) or ex.execution.pause_requested:
                launchable = True
                continue
            child = await ex._launch(item.task, run, None, None)
        if not child.state.terminal:
            await ex._advance(item.task, child)
        if not child.state.terminal:
            running += 1
        elif child.state.failed:
            failed = True
        elif child.state is State.WARNING:
            warning = True
    if running or launchable:
        return
    if not failed and any((run.id, None, t.task.id) not in ex._by_key for t in m.tasks):
        failed = True  # a task whose dependency failed never ran
    main = State.FAILED if failed else State.WARNING if warning else State.SUCCESS
    state = await ex._after(main, m.errors, m.finally_, run, None, None)
    await ex._finish(run, state)


async def _pause(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.Pause) -> None:
    if run.scratch.get("resumed"):
        if m.tasks:  # Kestra's older Pause: its child tasks run once it is resumed
            await ex._finish(run, await ex._block(m.tasks, [], [], run, None, None))
        else:
            await ex._finish(run, State.SUCCESS)
        return
    if run.state is not State.PAUSED:
        if m.pause_duration is not None:
            run.scratch["resumeAt"] = (ex._now + m.pause_duration).isoformat()
        ex._set(run, State.PAUSED)
    resume_at = run.scratch.get("resumeAt")
    if resume_at is not None:
        due = datetime.fromisoformat(resume_at)
        if ex._now >= due:
            run.scratch["resumed"] = True
            run.outputs = {"onResume": {i.id: i.defaults for i in m.on_resume}}
            if m.tasks and m.behavior is fl.PauseBehavior.RESUME:
                await ex._finish(run, await ex._block(m.tasks, [], [], run, None, None))
                return
            _pause_expired(ex, run, m)
        else:
            ex._wake(due)


def _pause_expired(ex: Executor, run: TaskRun, m: fl.Pause) -> None:
    """``pauseDuration`` passed with no resume: the Pause's ``behavior`` decides (Kestra's)."""
    waited = format_duration(m.pause_duration or timedelta())
    if m.behavior is fl.PauseBehavior.WARN:
        ex._end(run, State.WARNING)
    elif m.behavior is fl.PauseBehavior.FAIL:
        ex._fail(run, f"not resumed within {waited}")
    elif m.behavior is fl.PauseBehavior.CANCEL:
        run.error = f"not resumed within {waited}: the execution is cancelled"
        ex._set(run, State.CANCELLED)
        ex.execution.exit_state = State.CANCELLED
        ex.execution.exit_run = run.id
        ex._execution_changed = True
    else:
        ex._end(run, State.SUCCESS)


async def _loop_until(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.LoopUntil) -> None:
    if "iterationCount" not in run.outputs:
        run.outputs = {"iterationCount": 1}
        ex._touch(run)
    ex.publish_outputs(run)
    while True:
        iteration = int(run.scratch.get("iteration", 0))
        state = await ex._scope(m.tasks, run, iteration, None, False, 0)
        if state is None:
            return
        main: State | None = None
        if state.failed:
            main = State.FAILED
        else:
            next_at = run.scratch.get("nextAt")
            if next_at is None:
                # LoopUntil stops once the condition holds; WaitFor goes on while it holds.
                holds = truthy(await ex.render(run, m.condition))
                if holds != isinstance(m, fl.WaitFor):
                    main = State.SUCCESS
                else:
                    freq = m.check_frequency
                    started = run.history[0].date if run.history else ex._now
                    exhausted = freq.max_iterations is not None and (
                        iteration + 1 >= freq.max_iterations
                    )
                    late = freq.max_duration is not None and ex._now - started >= freq.max_duration
                    if exhausted or late:
                        run.error = (
                            f"condition still {str(holds).lower()} after {iteration + 1} "
                            "iteration(s)"
                        )
                        main = State.FAILED if m.fail_on_max_reached else State.SUCCESS
                    else:
                        run.scratch["nextAt"] = (ex._now + freq.interval).isoformat()
                        ex._touch(run)
                        next_at = run.scratch["nextAt"]
            if main is None and next_at is not None:
                due = datetime.fromisoformat(next_at)
                if ex._now < due:
                    ex._wake(due)
                    return
                run.scratch["iteration"] = iteration + 1
                run.scratch.pop("nextAt", None)
                run.outputs = {"iterationCount": iteration + 2}
                ex.publish_outputs(run)
                ex._touch(run)
                continue
        final = await ex._after(main, m.errors, m.finally_, run, None, None)
        await ex._finish(run, final)
        return


async def _subflow(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.Subflow) -> None:
    if "child" not in run.scratch:
        if ex.execution.pause_requested:
            return  # a manual pause: the subflow starts once resumed
        if run not in ex._step.subflows:
            ex._step.subflows.append(run)
        return
    if run.state is State.PAUSED:
        return  # waiting for a paused child to end
    if not m.wait:
        await ex._finish(run, State.SUCCESS)


async def _state_machine(ex: Executor, spec: TaskSpec, run: TaskRun, m: fl.StateMachine) -> None:
    scratch = run.scratch
    if "state" not in scratch:
        scratch.update(state=m.initial, count=0, transitions=[])
        run.outputs = {"state": m.initial, "transitions": []}
        ex._touch(run)
    while True:
        current: str = scratch["state"]
        count: int = scratch["count"]
        state = await ex._scope(m.states[current].tasks, run, count, None, False, 0)
        if state is None:
            return
        if state.failed:
            run.error = f"state '{current}' failed"
            await ex._finish(run, State.FAILED)
            return
        if current in m.finals:
            await ex._finish(run, State.WARNING if state is State.WARNING else State.SUCCESS)
            return
        target = None
        for transition in m.states[current].transitions:
            if truthy(await ex.render(run, transition.when)):
                target = transition.to
                break
        if target is None:
            run.error = f"no transition out of state '{current}' matched"
            await ex._finish(run, State.FAILED)
            return
        if count + 1 > m.max_transitions:
            run.error = f"more than {m.max_transitions} transitions (maxTransitions)"
            await ex._finish(run, State.FAILED)
            return
        scratch["transitions"].append({"from": current, "to": target, "date": ex._now.isoformat()})
        scratch["state"], scratch["count"] = target, count + 1
        run.outputs = {"state": target, "transitions": list(scratch["transitions"])}
        ex._touch(run)


_HANDLERS: dict[type, Callable[[Executor, TaskSpec, TaskRun, Any], Awaitable[None]]] = {
    fl.Sequential: _sequential,
    fl.AllowFailure: _sequential,
    fl.WorkingDirectory: _sequential,
    fl.Parallel: _parallel,
    fl.If: _if,
    fl.Switch: _switch,
    fl.ForEach: _for_each,
    fl.EachSequential: _for_each,
    fl.EachParallel: _for_each,
    fl.Dag: _dag,
    fl.Pause: _pause,
    fl.LoopUntil: _loop_until,
    fl.WaitFor: _loop_until,
    fl.Subflow: _subflow,
    fl.ForEachItem: _for_each_item,
    fl.ForEachItemBatches: _for_each_item_batches,
    fl.ForEachItemSubflow: _subflow,
    fl.StateMachine: _state_machine,
}


def register_handler(
    kind: type, handler: Callable[[Executor, TaskSpec, TaskRun, Any], Awaitable[None]]
) -> None:
    """Support for a flowable type defined outside the core (not yet part of the SDK)."""
    _HANDLERS[kind] = handler


def flatten(runs: Iterable[TaskRun]) -> list[str]:
    return [f"{r.task_id}:{r.state.value}" for r in runs]
