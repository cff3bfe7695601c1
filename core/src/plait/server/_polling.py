"""The polling loop: the plugins' ``PollingTrigger`` types (``plait.http.Trigger``,
``plait.db.Trigger``, ``plait.s3.Trigger``, any other) evaluated every ``interval``.

Each trigger is evaluated in its own task, never twice at once, bounded by a timeout; one that
raises or hangs gets its error recorded (``lastError``) and is backed off (doubling, at most
ten minutes) without slowing the others. The trigger object lives as long as the flow revision,
so what a plugin keeps on it (a cursor, the keys it saw, ``stopAfter``) lasts while the server
runs. A request's ``dedup_key`` is stored with a primary key in the transaction that creates the
execution: the same event never starts two executions, across restarts too.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait_sdk import ExecutionRequest, MetricType, PollingTrigger, RunContext, TaskLogger
from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from plait.engine import Execution, Lease
from plait.engine._model import utcnow
from plait.engine._runner import Runner
from plait.flows import Flow, TriggerSpec
from plait.secrets import Masker
from plait.server._trigger_gate import (
    acquire,
    clear_condition,
    conditions_met,
    record_condition,
    release,
)
from plait.storage import ExecutionStorage, SqlRepository, execution_row
from plait.storage._tables import executions as executions_table
from plait.storage._tables import trigger_states, webhook_deliveries

log = logging.getLogger("plait.server.triggers")
P = ParamSpec("P")
T = TypeVar("T")
#: The longest an evaluation may take, and the longest back-off after failures.
EVALUATION_TIMEOUT = 60.0
MAX_BACKOFF = timedelta(minutes=10)


class _Logger(TaskLogger):
    def __init__(self, where: str, masker: Masker) -> None:
        self._where = where
        self._masker = masker

    def _emit(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        text = msg % args if args else msg
        log.log(level, "trigger %s: %s", self._where, self._masker.mask(text))

    def debug(self, msg: str, *args: object) -> None:
        self._emit(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit(logging.INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit(logging.WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit(logging.ERROR, msg, args)


class TriggerContext(RunContext):
    """The RunContext a polling trigger gets: templates with ``flow`` and ``secret()``, the
    flow namespace's secrets, files under ``triggers/<namespace>/<flow>/<trigger>``."""

    def __init__(self, runner: Runner, flow: Flow, spec: TriggerSpec) -> None:
        self.namespace, self.flow_id = flow.namespace, flow.id
        self.execution_id, self.task_id, self.taskrun_id, self.attempt = "", spec.id, "", 1
        self._runner = runner
        self._masker = Masker()
        self._log = _Logger(f"{flow.namespace}.{flow.id}/{spec.id}", self._masker)
        prefix = f"triggers/{flow.namespace}/{flow.id}/{spec.id}"
        self._storage = ExecutionStorage(runner.storage, prefix, [prefix])
        self._dir: Path | None = None

    @property
    def log(self) -> TaskLogger:
        return self._log

    @property
    def storage(self) -> ExecutionStorage:
        return self._storage

    @property
    def working_dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=f"plait-trigger-{self.task_id}-"))
        return self._dir

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        context = {
            "flow": {"id": self.flow_id, "namespace": self.namespace},
            "secret": self.secret,
            **(extra or {}),
        }
        return await self._runner.templates.render_value(value, context)

    async def secret(self, name: str) -> str:
        value = await self._runner.secret(self.namespace, name)
        self._masker.add(value)
        return value

    def mask(self, value: str) -> None:
        self._masker.add(value)

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        return None  # trigger metrics are not stored yet

    @property
    def cancelled(self) -> bool:
        return False

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)


class Poller:
    """Evaluates the polling triggers of one flow revision set; driven by the scheduler pass."""

    def __init__(self, runner: Runner, repo: SqlRepository, spawn: Callable[..., object]) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn
        self._triggers: dict[tuple[str, str, int, str], tuple[PollingTrigger, TriggerContext]] = {}
        self._due: dict[tuple[str, str, str], datetime] = {}
        self._failures: dict[tuple[str, str, str], int] = {}
        self._running: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    def consider(self, flow: Flow, revision: int, spec: TriggerSpec, now: datetime) -> None:
        """Start an evaluation of this trigger if it is due and none is running."""
        key = (flow.namespace, flow.id, spec.id)
        running = self._running.get(key)
        if running is not None and not running.done():
            return
        if self._due.get(key, now) > now:
            return
        cache_key = (flow.namespace, flow.id, revision, spec.id)
        if cache_key not in self._triggers:
            trigger = spec.type_info.trigger_class.model_validate(spec.properties)
            self._triggers[cache_key] = (trigger, TriggerContext(self.runner, flow, spec))
        trigger, ctx = self._triggers[cache_key]
        assert isinstance(trigger, PollingTrigger)
        self._due[key] = now + trigger.interval
        task = asyncio.create_task(self._locked(flow, revision, spec, trigger, ctx, now))
        self._running[key] = task

    async def close(self) -> None:
        """Cancel the evaluations under way (the server stops)."""
        for task in self._running.values():
            task.cancel()
        await self.settle()

    async def settle(self) -> None:
        """Wait for the evaluations under way (tests, shutdown)."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _locked(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: PollingTrigger,
        ctx: TriggerContext,
        now: datetime,
    ) -> None:
        """Evaluate under the trigger's lock in the database (another process holding it, or a
        dead one whose lock has not expired nor been unlocked, means: not now)."""
        if not await acquire(self.repo, flow, spec, self.runner.owner, now):
            return
        try:
            await self._evaluate(flow, revision, spec, trigger, ctx, now)
        finally:
            await release(self.repo, flow, spec, self.runner.owner)

    async def _evaluate(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: PollingTrigger,
        ctx: TriggerContext,
        now: datetime,
    ) -> None:
        key = (flow.namespace, flow.id, spec.id)
        try:
            request = await asyncio.wait_for(trigger.evaluate(ctx), EVALUATION_TIMEOUT)
        except Exception as error:  # a plugin's failure is its trigger's last error
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            backoff = min(trigger.interval * 2**failures, MAX_BACKOFF)
            self._due[key] = now + max(backoff, trigger.interval)
            text = ctx._masker.mask(f"{type(error).__name__}: {error}"[:1000])
            log.warning("trigger %s.%s/%s failed: %s", *key, text)
            await self._record(flow, spec, now, text)
            return
        self._failures.pop(key, None)
        if request is None:
            await self._record(flow, spec, now, None)
            return
        await self._start(flow, revision, spec, trigger, request, now)

    async def _start(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: PollingTrigger,
        request: ExecutionRequest,
        now: datetime,
    ) -> None:
        variables = {**request.variables, "id": spec.id, "type": spec.type}
        inputs = {**spec.inputs, **request.inputs}
        reason = await conditions_met(self.runner, flow, spec, now, variables)
        if reason is not None:  # the event starts nothing; the reason shows on the trigger
            await record_condition(self.repo, flow, spec, now, reason)
            return

        async def persist(execution: Execution, lease: Lease) -> None:
            def run(conn: Connection) -> None:
                if request.dedup_key:
                    try:
                        conn.execute(
                            insert(webhook_deliveries).values(
                                namespace=flow.namespace,
                                flow_id=flow.id,
                                trigger_id=spec.id,
                                delivery_id=request.dedup_key[:255],
                                execution_id=execution.id,
                                created=utcnow(),
                            )
                        )
                    except IntegrityError:
                        conn.rollback()
                        raise _Seen from None
                _upsert_state(conn, flow, spec, now, execution.id, None)
                if spec.conditions:
                    clear_condition(conn, flow, spec)
                conn.execute(insert(executions_table).values(**execution_row(execution, lease)))
                conn.commit()

            await self.repo.call(run)

        try:
            execution = await self.runner.create(
                flow,
                revision,
                inputs,
                labels=request.labels,
                trigger=variables,
                persist=persist,
            )
        except _Seen:
            await self._record(flow, spec, now, None)
            return
        except Exception as error:
            await self._record(flow, spec, now, f"{type(error).__name__}: {error}"[:1000])
            return
        self.spawn(self._drive(flow, execution, trigger), f"execution {execution.id}")

    async def _drive(self, flow: Flow, execution: Execution, trigger: PollingTrigger) -> Execution:
        """Drive the execution, then tell the trigger how it ended when it wants to know
        (``execution_ended(state)``: ``stopAfter`` of the HTTP trigger)."""
        ended = await self.runner.drive(flow, execution)
        tell = getattr(trigger, "execution_ended", None)
        if ended.state.terminal and callable(tell):
            tell(ended.state.value)
        return ended

    async def _record(
        self, flow: Flow, spec: TriggerSpec, now: datetime, error: str | None
    ) -> None:
        def run(conn: Connection) -> None:
            _upsert_state(conn, flow, spec, now, None, error)
            conn.commit()

        await self.repo.call(run)


class _Seen(Exception):
    """The request's dedup key started an execution before."""


def _upsert_state(
    conn: Connection,
    flow: Flow,
    spec: TriggerSpec,
    now: datetime,
    execution_id: str | None,
    error: str | None,
) -> None:
    where = (
        (trigger_states.c.namespace == flow.namespace)
        & (trigger_states.c.flow_id == flow.id)
        & (trigger_states.c.trigger_id == spec.id)
    )
    values: dict[str, Any] = {"last_evaluation": now, "last_error": error}
    if execution_id is not None:
        values["last_execution_id"] = execution_id
    if conn.execute(update(trigger_states).where(where).values(**values)).rowcount == 0:
        conn.execute(
            insert(trigger_states).values(
                namespace=flow.namespace,
                flow_id=flow.id,
                trigger_id=spec.id,
                type=spec.type,
                disabled=False,
                **values,
            )
        )
