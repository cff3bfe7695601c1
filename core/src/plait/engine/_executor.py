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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plait_sdk import (
    ChildRun,
    ChildTask,
    Effect,
    EndExecution,
    FlowScope,
    SetLabels,
    SetVariables,
    UnsetVariables,
    UserError,
)

from plait.engine._context import kestra_date, run_envs, run_globals
from plait.engine._restart import RESTARTED_LABEL, plan_restart, shares_working_directory
from plait.engine._retry import next_attempt_at
from plait.engine._templated import retry_for, timeout_of
from plait.flows import (
    Flow,
    Retry,
    State,
    TaskSpec,
    all_task_specs,
    nested_inputs,
)
from plait.records import Attempt, Execution, TaskRun
from plait.templating import TemplateError, format_duration

Render = Callable[[dict[str, Any], Any], Awaitable[Any]]

#: The states a task may end the execution in (plait_sdk.EndExecution) as the engine's.
_EXIT_STATES = {
    "SUCCESS": State.SUCCESS,
    "WARNING": State.WARNING,
    "KILLED": State.KILLED,
    "FAILED": State.FAILED,
    "CANCELED": State.CANCELLED,
}

#: Context key of the loop values of a task run (see Executor.context_for).
LOOP_VALUES = "plait:loop-values"


def _variable_change(effect: Effect) -> dict[str, Any] | None:
    """A variables effect as stored with its task run (JSON), else ``None``."""
    if isinstance(effect, SetVariables):
        return {"set": dict(effect.variables), "overwrite": effect.overwrite}
    if isinstance(effect, UnsetVariables):
        return {"unset": list(effect.names), "ignoreMissing": effect.ignore_missing}
    return None


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
        #: Called before a flowable run that shares a working directory ends (its children
        #: done): it may set the run's outputs (a WorkingDirectory's ``outputFiles``, uploaded
        #: by the runner) or raise UserError to fail it. Set by the runner.
        self.closing: Callable[[TaskRun, TaskSpec], Awaitable[None]] | None = None
        #: The execution's state once decided, while its afterExecution tasks run.
        self.decided: State | None = None
        self._after_ids = {s.id for s in all_task_specs(flow.after_execution)}
        self.specs: dict[str, TaskSpec] = {
            s.id: s
            for s in all_task_specs(
                [*flow.tasks, *flow.errors, *flow.finally_, *flow.after_execution]
            )
        }
        #: Task id -> the other name its runs' loop value has in templates (taskrun.<name>).
        self._value_names = {
            s.id: s.flowable.value_name
            for s in self.specs.values()
            if s.flowable is not None and s.flowable.value_name
        }
        self.runs: dict[str, TaskRun] = {}
        self._by_key: dict[tuple[str | None, int | None, str], TaskRun] = {}
        self.outputs: dict[str, Any] = {}
        for run in execution.task_runs:
            self._index(run)
            self._record_outputs(run)
            if run.outputs and not run.state.terminal and self._is_flowable_run(run):
                # A running flowable's outputs are seen by its children (a loop's
                # iterationCount): visible again when an execution is driven anew.
                self.publish_outputs(run)
        #: Sequential scopes' progress, keyed by the id() of their task list; the list is kept
        #: alive with it, so no other list can take that id meanwhile (a flowable may pass a
        #: list it made for one step).
        self._cursors: dict[
            tuple[str | None, int | None, int], tuple[int, bool, list[TaskSpec]]
        ] = {}
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
            value_name = self._value_names.get(run.task_id)
            if value_name is not None:  # ForEachItem's subflows: taskrun.items, the batch file
                ctx["taskrun"][value_name] = self.value_of(run)
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
                (a for a in ancestors if shares_working_directory(self.specs[a.task_id])), None
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
            start, warning, _ = self._cursors.get(cursor_key, (0, False, specs))
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
                self._cursors[cursor_key] = (index + 1, warning, specs)
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
        return spec.flowable is not None

    def _is_flowable_run(self, run: TaskRun) -> bool:
        spec = self.specs.get(run.task_id)
        return spec is not None and spec.flowable is not None

    def _starts_flows(self, spec: TaskSpec) -> bool:
        return spec.flowable is not None and spec.flowable.starts_flows

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
        assert model is not None
        try:
            if self.closing is not None and model.shares_working_directory():
                await self._decide_closing(model, spec, run, self.closing)
            else:
                await model.decide(_Scope(self, spec, run))
        except (TemplateError, UserError, NotImplementedError) as error:
            self._fail(run, f"task '{spec.id}': {error}")
        except Exception as error:  # a plugin's flowable that broke: its run fails, not the step
            self._fail(run, f"task '{spec.id}': {type(error).__name__}: {error}")

    async def _decide_closing(
        self,
        model: Any,
        spec: TaskSpec,
        run: TaskRun,
        closing: Callable[[TaskRun, TaskSpec], Awaitable[None]],
    ) -> None:
        """Decide, holding back the run's end until ``closing`` ran: its outputs are then set
        before the run ends (the tasks after it see them in the same step)."""
        scope = _HeldScope(self, spec, run)
        await model.decide(scope)
        if scope.end is None or run.state.terminal:
            return
        state, reason, allow_failure = scope.end
        try:
            await closing(run, spec)
        except UserError as error:
            if not state.failed:
                state, reason, allow_failure = State.FAILED, f"task '{spec.id}': {error}", False
        _Scope.finish(scope, state, reason=reason, allow_failure=allow_failure)

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
        effects: Sequence[Effect] = (),
    ) -> TaskRun:
        """Record the end of a worker's attempt; retries are scheduled here. The ``effects`` the
        task asked for (labels, variables, the end of the execution) apply if it succeeded."""
        self._now = now
        run = self.runs[run_id]
        spec = self.specs[run.task_id]
        attempt = run.attempts[-1]
        attempt.ended = now
        end: EndExecution | None = None
        if error is None and not killed and effects:
            changes = [_variable_change(e) for e in effects]
            kept = [c for c in changes if c is not None]
            if kept:
                error = self._update_variables(kept)
                if error is None:
                    run.scratch["variables"] = kept  # a replay rebuilds vars from these
            end = next((e for e in reversed(effects) if isinstance(e, EndExecution)), None)
        if killed:
            attempt.state = State.KILLED
            run.error = error or "killed"
            self._set(run, State.KILLED)
        elif error is None:
            attempt.state = State.SUCCESS
            run.outputs = outputs or {}
            run.error = None
            self._apply_labels(effects)
            if end is not None:
                self._exit_with(run, _EXIT_STATES[end.state])
                self._touch(run)
                return run
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

    def _apply_labels(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SetLabels):
                self.execution.labels.update(effect.labels)
                self._execution_changed = True

    def _update_variables(self, changes: list[dict[str, Any]]) -> str | None:
        """Set / unset execution variables (``vars``) as a task asked, or say why not (then the
        task run fails, and nothing changed)."""
        ex = self.execution
        current = copy.deepcopy(self.flow.variables if ex.variables is None else ex.variables)
        for change in changes:
            if "set" in change:
                given = dict(change["set"])
                if not change.get("overwrite", True):
                    existing = sorted(k for k in given if k in current)
                    if existing:
                        return "overwrite is false and these variables already exist: " + (
                            ", ".join(existing)
                        )
                current = _deep_merge(current, given)
                continue
            for name in change["unset"]:
                *parents, leaf = str(name).split(".")
                scope: Any = current
                for part in parents:
                    scope = scope.get(part) if isinstance(scope, dict) else None
                if not isinstance(scope, dict) or leaf not in scope:
                    if change.get("ignoreMissing"):
                        continue
                    return f"variable '{name}' is not set"
                del scope[leaf]
        ex.variables = current
        self._execution_changed = True
        return None

    def rebuild_variables(self) -> None:
        """The variables (``vars``) as this execution's ended task runs left them: for a replay
        from a task run, whose copied variable-setting runs are not run again."""
        self.execution.variables = None
        changes = [
            r
            for r in self.runs.values()
            if r.scratch.get("variables")
            and r.state in (State.SUCCESS, State.WARNING)
            and r.history
        ]
        for run in sorted(changes, key=lambda r: r.history[-1].date):
            self._update_variables(list(run.scratch["variables"]))

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
        target = model.child_flow() if model is not None else None
        run.outputs = {"executionId": child_id, "state": state.value, "outputs": outputs}
        if state.failed and (target is None or target.transmit_failed):
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
            if r.state is State.PAUSED and not self._starts_flows(self.specs[r.task_id])
        ]

    def subflow_waits(self) -> list[TaskRun]:
        """Subflow runs waiting for a paused child."""
        return [
            r
            for r in self.runs.values()
            if r.state is State.PAUSED and self._starts_flows(self.specs[r.task_id])
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


# -- the flowables' scope --------------------------------------------------------------------


class _Scope(FlowScope):
    """What one flowable run may read and decide in one step (plait_sdk.FlowScope), over the
    executor. Children are the core's TaskSpec entries (the SDK's ChildTask)."""

    __slots__ = ("_ex", "_run", "_spec")

    def __init__(self, executor: Executor, spec: TaskSpec, run: TaskRun) -> None:
        self._ex = executor
        self._spec = spec
        self._run = run

    @property
    def now(self) -> datetime:
        return self._ex._now

    @property
    def started(self) -> datetime:
        run = self._run
        return run.history[0].date if run.history else self._ex._now

    @property
    def state(self) -> State:
        return self._run.state

    @property
    def memory(self) -> Mapping[str, Any]:
        return self._run.scratch

    @property
    def outputs(self) -> Mapping[str, Any]:
        return self._run.outputs

    @property
    def holding(self) -> bool:
        return self._ex.execution.pause_requested

    async def render(self, value: Any) -> Any:
        return await self._ex.render(self._run, value)

    def child(self, task: ChildTask, *, iteration: int | None = None) -> ChildRun | None:
        return self._ex._by_key.get((self._run.id, iteration, task.id))

    def children(self, of: ChildRun | None = None) -> list[ChildRun]:
        parent = self._run.id if of is None else of.id
        return [r for r in self._ex.execution.task_runs if r.parent_id == parent]

    def sibling(self, task_id: str) -> ChildRun | None:
        run = self._run
        return self._ex._by_key.get((run.parent_id, run.iteration, task_id))

    def remember(self, key: str, value: Any) -> None:
        self._run.scratch[key] = value
        self._ex._touch(self._run)

    def set_outputs(self, outputs: Mapping[str, Any]) -> None:
        self._run.outputs = dict(outputs)
        self._ex.publish_outputs(self._run)
        self._ex._touch(self._run)

    async def run(
        self, task: ChildTask, *, iteration: int | None = None, value: Any = None
    ) -> ChildRun:
        spec = _spec(task)
        child = self._ex._by_key.get((self._run.id, iteration, spec.id))
        if child is None:
            child = await self._ex._launch(spec, self._run, iteration, value)
        if not child.state.terminal:
            await self._ex._advance(spec, child)
        return child

    def skip(self, task: ChildTask, *, iteration: int | None = None, value: Any = None) -> ChildRun:
        spec = _spec(task)
        child = self._ex._by_key.get((self._run.id, iteration, spec.id))
        if child is None:
            child = self._ex._create(spec, self._run, iteration, value)
            self._ex._set(child, State.SKIPPED)
        return child

    async def run_tasks(
        self,
        tasks: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
        parallel: bool = False,
        concurrency: int = 0,
    ) -> State | None:
        return await self._ex._scope(
            _specs(tasks), self._run, iteration, value, parallel, concurrency
        )

    async def handle(
        self,
        state: State | None,
        errors: Sequence[ChildTask],
        finally_: Sequence[ChildTask],
        *,
        iteration: int | None = None,
        value: Any = None,
    ) -> State | None:
        return await self._ex._after(
            state, _specs(errors), _specs(finally_), self._run, iteration, value
        )

    def finish(
        self, state: State | None, *, reason: str | None = None, allow_failure: bool = False
    ) -> None:
        if state is None:
            return
        if reason is not None:
            self._run.error = reason
        self._ex._end(self._run, state, allow_failure=allow_failure)

    def pause(self) -> None:
        self._ex._set(self._run, State.PAUSED)

    def wake_at(self, when: datetime) -> None:
        self._ex._wake(when)

    def end_execution(self, state: State, reason: str) -> None:
        run, execution = self._run, self._ex.execution
        run.error = reason
        self._ex._set(run, state)
        execution.exit_state = state
        execution.exit_run = run.id
        self._ex._execution_changed = True

    def start_flow(self) -> None:
        if "child" in self._run.scratch or self.holding:
            return  # started already, or a manual pause: it starts once resumed
        if self._run not in self._ex._step.subflows:
            self._ex._step.subflows.append(self._run)

    def give_properties(self, child: ChildRun, properties: Mapping[str, Any]) -> None:
        run = self._ex.runs[child.id]
        if run.scratch.get("properties") != properties:
            run.scratch["properties"] = dict(properties)
            self._ex._touch(run)


class _HeldScope(_Scope):
    """A scope whose ``finish`` is only noted (Executor._decide_closing applies it)."""

    __slots__ = ("end",)

    def __init__(self, executor: Executor, spec: TaskSpec, run: TaskRun) -> None:
        super().__init__(executor, spec, run)
        self.end: tuple[State, str | None, bool] | None = None

    def finish(
        self, state: State | None, *, reason: str | None = None, allow_failure: bool = False
    ) -> None:
        if state is not None:
            self.end = (state, reason, allow_failure)


def _spec(task: ChildTask) -> TaskSpec:
    if not isinstance(task, TaskSpec):
        raise UserError(f"child task '{task.id}' is not one of this flow's task entries")
    return task


def _specs(tasks: Sequence[ChildTask]) -> list[TaskSpec]:
    # The model's own list, as is: Executor._scope keeps a sequential cursor per list object.
    if isinstance(tasks, list) and all(isinstance(t, TaskSpec) for t in tasks):
        return tasks
    return [_spec(t) for t in tasks]


def flatten(runs: Iterable[TaskRun]) -> list[str]:
    return [f"{r.task_id}:{r.state.value}" for r in runs]
