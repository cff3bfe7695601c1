"""What the polling and realtime trigger loops share: the RunContext a trigger gets, its durable
state (``trigger_states.state``), hearing how its executions ended, and the ONE transaction
that starts an execution with the trigger's new state and the request's dedup key.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from plait_sdk import ExecutionRequest, StatefulTrigger, TaskLogger
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from plait.engine import ContextBase, Runner
from plait.files import ExecutionStorage
from plait.flows import TERMINAL_STATES, Flow, TriggerSpec
from plait.kv import ScopedKV
from plait.records import Execution, Lease, MetricRecord, utcnow
from plait.secrets import Masker
from plait.server._trigger_gate import clear_condition, conditions_met, record_condition
from plait.storage import SqlRepository, executions, trigger_states, webhook_deliveries

log = logging.getLogger("plait.server.triggers")
#: The most executions a trigger waits to hear the end of (``execution_ended``); beyond it the
#: oldest are forgotten (a trigger starting that many without any ending is not waiting).
MAX_WATCHING = 1000


class _Logger(TaskLogger):
    """A trigger's ``ctx.log``: the server's log, masked."""

    def __init__(self, where: str, masker: Masker) -> None:
        self._where = where
        self._masker = masker

    def _emit(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = " ".join([msg, *map(str, args)])
        log.log(level, "trigger %s: %s", self._where, self._masker.mask(text))

    def debug(self, msg: str, *args: object) -> None:
        self._emit(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit(logging.INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit(logging.WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit(logging.ERROR, msg, args)


def trigger_context(runner: Runner, flow: Flow, spec: TriggerSpec) -> TriggerContext:
    """The RunContext of a trigger: templates with ``flow`` and ``secret()``, the flow
    namespace's secrets and key-value store, files under ``triggers/<ns>/<flow>/<trigger>``;
    its metrics are stored with the execution its evaluation starts."""
    masker = Masker()
    prefix = f"triggers/{flow.namespace}/{flow.id}/{spec.id}"
    workdir: list[Path] = []

    def working_dir() -> Path:
        if not workdir:
            workdir.append(Path(tempfile.mkdtemp(prefix=f"plait-trigger-{spec.id}-")))
        return workdir[0]

    async def render(value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        context = {
            "flow": {"id": flow.id, "namespace": flow.namespace},
            "secret": secret,
            **(extra or {}),
        }
        return await runner.templates.render_value(value, context)

    async def secret(name: str) -> str:
        value = await runner.secret(flow.namespace, name)
        masker.add(value)
        return value

    return TriggerContext(
        namespace=flow.namespace,
        flow_id=flow.id,
        execution_id="",
        task_id=spec.id,
        taskrun_id="",
        attempt=1,
        logger=_Logger(f"{flow.namespace}.{flow.id}/{spec.id}", masker),
        masker=masker,
        storage=ExecutionStorage(runner.storage, prefix, [prefix]),
        working_dir=working_dir,
        render=render,
        secret=secret,
        metrics=[],
        kv=ScopedKV(runner.kv, flow.namespace) if runner.kv is not None else None,
    )


class TriggerContext(ContextBase):
    """A trigger's RunContext (see :func:`trigger_context`)."""

    def masked(self, text: str) -> str:
        return self._masker.mask(text)

    def take_metrics(self, execution_id: str) -> list[MetricRecord]:
        """The metrics recorded since the last call, as the execution ``execution_id``'s."""
        taken, self._metrics[:] = list(self._metrics), []
        for record in taken:
            record.execution_id = execution_id
        return taken


@dataclass
class Stored:
    """A trigger's durable state as read from its row."""

    state: dict[str, Any] | None = None
    watching: list[str] = field(default_factory=list)


def _where(flow: Flow, spec: TriggerSpec) -> Any:
    return (
        (trigger_states.c.namespace == flow.namespace)
        & (trigger_states.c.flow_id == flow.id)
        & (trigger_states.c.trigger_id == spec.id)
    )


async def load(repo: SqlRepository, flow: Flow, spec: TriggerSpec) -> Stored:
    def run(conn: Connection) -> Stored:
        row = conn.execute(
            select(trigger_states.c.state, trigger_states.c.watching).where(_where(flow, spec))
        ).first()
        conn.commit()
        if row is None:
            return Stored()
        return Stored(
            json.loads(row.state) if row.state else None,
            json.loads(row.watching) if row.watching else [],
        )

    return await repo.call(run)


async def tell_ended(
    repo: SqlRepository, trigger: StatefulTrigger, stored: Stored, ctx: TriggerContext
) -> bool:
    """Call ``execution_ended`` for the watched executions that ended (state already loaded
    into ``trigger``); True when some did (the caller then stores state and watch list)."""
    if not stored.watching:
        return False
    ids = list(stored.watching)

    def run(conn: Connection) -> dict[str, str]:
        rows = conn.execute(
            select(executions.c.id, executions.c.state).where(executions.c.id.in_(ids))
        ).all()
        conn.commit()
        return {r.id: r.state for r in rows}

    states = await repo.call(run)
    terminal = {s.value for s in TERMINAL_STATES}
    told = False
    for execution_id in ids:
        state = states.get(execution_id)
        if state is None:  # deleted or purged: nothing to tell any more
            stored.watching.remove(execution_id)
            told = True
        elif state in terminal:
            try:
                trigger.execution_ended(execution_id, state)
            except Exception as error:  # the plugin's bug: logged, not retried forever
                log.warning(
                    "trigger %s.%s/%s: execution_ended failed: %s",
                    ctx.namespace,
                    ctx.flow_id,
                    ctx.task_id,
                    ctx.masked(f"{type(error).__name__}: {error}"),
                )
            stored.watching.remove(execution_id)
            told = True
    return told


def upsert_state(
    conn: Connection,
    flow: Flow,
    spec: TriggerSpec,
    now: datetime,
    *,
    error: str | None,
    execution_id: str | None = None,
    state: dict[str, Any] | None = None,
    watching: list[str] | None = None,
) -> None:
    """Update (or create) the trigger's row: last evaluation and error, and when given its
    last execution, durable state and watch list."""
    values: dict[str, Any] = {"last_evaluation": now, "last_error": error}
    if execution_id is not None:
        values["last_execution_id"] = execution_id
    if state is not None:
        values["state"] = json.dumps(state, separators=(",", ":"))
    if watching is not None:
        values["watching"] = json.dumps(watching[-MAX_WATCHING:])
    if conn.execute(update(trigger_states).where(_where(flow, spec)).values(**values)).rowcount:
        return
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


async def record(
    repo: SqlRepository,
    flow: Flow,
    spec: TriggerSpec,
    now: datetime,
    error: str | None,
    *,
    trigger: StatefulTrigger | None = None,
    stored: Stored | None = None,
) -> None:
    """Store an evaluation that started nothing: its error, and (when ``trigger`` is given)
    the state it left."""

    def run(conn: Connection) -> None:
        upsert_state(
            conn,
            flow,
            spec,
            now,
            error=error,
            state=trigger.dump_state() if trigger is not None else None,
            watching=stored.watching if stored is not None and trigger is not None else None,
        )
        conn.commit()

    await repo.call(run)


class Seen(Exception):
    """The request's dedup key started an execution before."""


async def start(
    runner: Runner,
    repo: SqlRepository,
    flow: Flow,
    revision: int,
    spec: TriggerSpec,
    trigger: StatefulTrigger,
    stored: Stored,
    ctx: TriggerContext,
    request: ExecutionRequest,
    now: datetime,
) -> Execution | None:
    """Create the execution a request asks for, in ONE transaction with the request's dedup
    key, the trigger's new state and watch list. ``None`` when the dedup key was seen before
    (the new state is stored all the same: the trigger moved past the event)."""
    variables = {**request.variables, "id": spec.id, "type": spec.type}
    inputs = {**spec.inputs, **request.inputs}
    state = trigger.dump_state()
    watch = trigger.watches_executions()
    reason = await conditions_met(runner, flow, spec, now, variables)
    if reason is not None:  # the event starts nothing; the reason shows on the trigger
        await record(repo, flow, spec, now, None, trigger=trigger, stored=stored)
        await record_condition(repo, flow, spec, now, reason)
        ctx.take_metrics("")
        return None

    async def persist(execution: Execution, lease: Lease) -> None:
        def rows(conn: Connection) -> None:
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
                    raise Seen from None
            upsert_state(
                conn,
                flow,
                spec,
                now,
                error=None,
                execution_id=execution.id,
                state=state,
                watching=[*stored.watching, execution.id] if watch else stored.watching,
            )
            if spec.conditions:
                clear_condition(conn, flow, spec)

        await repo.insert_execution(execution, lease, rows)

    try:
        execution = await runner.create(
            flow,
            revision,
            inputs,
            labels=request.labels,
            trigger=variables,
            persist=persist,
        )
    except Seen:
        await record(repo, flow, spec, now, None, trigger=trigger, stored=stored)
        ctx.take_metrics("")
        return None
    if watch:
        stored.watching.append(execution.id)
    metrics = ctx.take_metrics(execution.id)
    if metrics:
        await repo.append_metrics(metrics)
    return execution
