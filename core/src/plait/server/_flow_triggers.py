"""Flow triggers (``plait.core.Flow``): start a flow when executions of others end.

Each pass of the trigger loop looks, for every enabled flow trigger, at the executions that
ended since its last pass (``trigger_states.last_date``, minus ``LAG`` so an end committed a
little late is still seen) and that it has not handled yet (``flow_trigger_events``). An
execution that counts starts the downstream one in ONE transaction with the row saying "this
ended execution was handled by this trigger" (its primary key): a crash before the commit
leaves it unhandled (the next pass, after a restart too, handles it), a crash after cannot
start it twice, and two loops on one database start it once. Executions that ended while the
server was down are handled at its first pass, since the last pass's date is stored.

Chains stop: each started execution records its depth (one more than the ended execution's),
and a start deeper than ``flow_trigger_max_depth`` is refused with the reason logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from plait_sdk import UserError
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from plait.engine import Runner
from plait.flows import Flow, TriggerSpec
from plait.limits import limits
from plait.records import Execution, Lease, utcnow
from plait.server._trigger_gate import acquire, conditions_met, release, upsert_state
from plait.storage import SqlRepository, execution_row, flow_trigger_events
from plait.storage import executions as executions_table
from plait.triggers import FilterField, FlowTrigger

log = logging.getLogger("plait.server.triggers")

Spawn = Callable[[Coroutine[Any, Any, Execution], str], object]
#: Ends are looked for this far before the last pass: an execution's end date is taken before
#: its row commits, and several servers' clocks differ a little.
LAG = timedelta(minutes=5)
#: Ended executions one trigger handles per pass (the rest at the next passes).
BATCH = 200


class _Handled(Exception):
    """Another pass (another process) handled this ended execution first."""


class FlowTriggers:
    """The flow-trigger part of the trigger loop (one per scheduler)."""

    def __init__(self, runner: Runner, repo: SqlRepository, spawn: Spawn) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn

    async def evaluate(
        self,
        found: list[tuple[Flow, int, TriggerSpec]],
        last_dates: Mapping[tuple[str, str, str], tuple[datetime | None, bool] | None],
        now: datetime,
    ) -> list[Execution]:
        """One pass over the flow triggers ``found``; ``last_dates``: each one's stored last
        pass date and whether it is disabled (``None``: never seen)."""
        created: list[Execution] = []
        for flow, revision, spec in found:
            key = (flow.namespace, flow.id, spec.id)
            seen = last_dates.get(key)
            if seen is not None and seen[1]:
                continue  # disabled through the API
            if not await acquire(self.repo, flow, spec, self.runner.owner, now):
                continue
            try:
                if seen is None or seen[0] is None:
                    # A new trigger counts the executions that end from now on, not the past.
                    await self._moved(flow, spec, now)
                    continue
                created += await self._pass(flow, revision, spec, seen[0], now)
            except Exception:  # one broken trigger does not stop the others
                log.exception("flow trigger %s.%s/%s: pass failed", *key)
            finally:
                await release(self.repo, flow, spec, self.runner.owner)
        return created

    async def _pass(
        self, flow: Flow, revision: int, spec: TriggerSpec, since: datetime, now: datetime
    ) -> list[Execution]:
        trigger = FlowTrigger.model_validate(spec.properties)
        candidates = await self._candidates(flow, spec, trigger, since - LAG)
        created = []
        for upstream in candidates:
            started = await self._handle(flow, revision, spec, trigger, upstream, now)
            if started is not None:
                created.append(started)
        if len(candidates) < BATCH:
            await self._moved(flow, spec, now)
        return created

    async def _candidates(
        self, flow: Flow, spec: TriggerSpec, trigger: FlowTrigger, since: datetime
    ) -> list[Execution]:
        """Ended executions in the trigger's states since ``since`` it has not handled, oldest
        first, filtered on the columns where the preconditions allow."""
        fte = flow_trigger_events.c
        # Handled for this end: a row written after the execution last changed state (an
        # execution restarted since ends again later and counts again).
        handled_here = (
            select(fte.upstream_id)
            .where(
                fte.namespace == flow.namespace,
                fte.flow_id == flow.id,
                fte.trigger_id == spec.id,
                fte.upstream_id == executions_table.c.id,
                fte.created >= executions_table.c.updated,
            )
            .exists()
        )
        query = (
            select(executions_table.c.id)
            .where(
                executions_table.c.state.in_(trigger.states),
                executions_table.c.updated >= since,
                ~handled_here,
            )
            .order_by(executions_table.c.updated, executions_table.c.id)
        )
        entries = trigger.preconditions.flows if trigger.preconditions else []
        if entries and all(e.namespace is not None for e in entries):
            query = query.where(executions_table.c.namespace.in_({e.namespace for e in entries}))
        if entries and all(e.flow_id is not None for e in entries):
            query = query.where(executions_table.c.flow_id.in_({e.flow_id for e in entries}))

        def run(conn: Connection) -> tuple[list[str], set[tuple[str, int]]]:
            ids = [r[0] for r in conn.execute(query.limit(BATCH * 4))]
            handled: set[tuple[str, int]] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                handled.update(
                    (r[0], r[1])
                    for r in conn.execute(
                        select(
                            flow_trigger_events.c.upstream_id,
                            flow_trigger_events.c.upstream_attempt,
                        ).where(
                            flow_trigger_events.c.namespace == flow.namespace,
                            flow_trigger_events.c.flow_id == flow.id,
                            flow_trigger_events.c.trigger_id == spec.id,
                            flow_trigger_events.c.upstream_id.in_(chunk),
                        )
                    )
                )
            conn.commit()
            return ids, handled

        ids, handled = await self.repo.call(run)
        out: list[Execution] = []
        for execution_id in ids:
            execution = await self.repo.get_execution(execution_id)
            if execution is None or (execution.id, execution.attempt) in handled:
                continue
            out.append(execution)
            if len(out) >= BATCH:
                break
        return out

    async def _handle(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: FlowTrigger,
        upstream: Execution,
        now: datetime,
    ) -> Execution | None:
        where = f"flow trigger {flow.namespace}.{flow.id}/{spec.id}"
        info = _described(upstream)
        variables = {"id": spec.id, "type": FlowTrigger.type_name, **info}
        outcome = await self._matches(trigger, flow, info)
        if outcome is not None:
            await self._record(flow, spec, upstream, "filtered", now)
            return None
        pre = trigger.preconditions
        ended = upstream.history[-1].date if upstream.history else utcnow()
        if pre is not None and pre.time_window.bounds(ended) is None:
            await self._record(flow, spec, upstream, "outside-window", now)
            return None
        if pre is not None and len(pre.flows) > 1:
            partners = await self._partners(flow, spec, trigger, upstream, info)
            if partners is None:  # the other flows have not all ended in the window yet
                await self._record(flow, spec, upstream, "waiting", now)
                return None
            for partner in partners:  # Kestra merges the outputs of the executions matched
                variables["outputs"] = {**partner.outputs, **variables["outputs"]}
        reason = await conditions_met(
            self.runner, flow, spec, now, variables, execution=_for_conditions(info, upstream)
        )
        if reason is not None:
            await self._record(flow, spec, upstream, "conditions", now, condition=reason)
            return None
        depth = await self._depth_of(upstream.id) + 1
        limit = limits().flow_trigger_max_depth
        if depth > limit:
            error = (
                f"not started: execution {upstream.id} would be {depth} flow triggers deep "
                f"(limit flow_trigger_max_depth is {limit}, set with "
                "PLAIT_LIMIT_FLOW_TRIGGER_MAX_DEPTH)"
            )
            log.warning("%s: %s", where, error)
            await self._record(flow, spec, upstream, "depth", now, error=error)
            return None
        try:
            inputs = await self.runner.templates.render_value(
                dict(spec.inputs),
                {"trigger": variables, "flow": {"namespace": flow.namespace, "id": flow.id}},
            )
            execution = await self.runner.create(
                flow,
                revision,
                inputs,
                trigger=variables,
                persist=self._persist(flow, spec, upstream, depth, now),
            )
        except _Handled:
            return None
        except (UserError, ValueError) as error:
            text = f"not started for execution {upstream.id}: {error}"[:1000]
            log.warning("%s: %s", where, text)
            await self._record(flow, spec, upstream, "error", now, error=text)
            return None
        self.spawn(self.runner.drive(flow, execution), f"execution {execution.id}")
        return execution

    async def _matches(
        self, trigger: FlowTrigger, flow: Flow, info: Mapping[str, Any]
    ) -> str | None:
        """``None`` when the ended execution passes the preconditions, else which failed."""
        pre = trigger.preconditions
        if pre is None:
            return None
        if pre.flows and not any(entry.matches(info) for entry in pre.flows):
            return "flows"
        for where in pre.where:
            results = []
            for f in where.filters:
                if f.field is FilterField.EXPRESSION:
                    context = {
                        "trigger": dict(info),
                        "flow": {"namespace": flow.namespace, "id": flow.id},
                    }
                    actual = await self.runner.templates.render_value(f.value or "", context)
                    results.append(_truthy(actual))
                    continue
                actual = {
                    FilterField.FLOW_ID: info.get("flowId"),
                    FilterField.NAMESPACE: info.get("namespace"),
                    FilterField.STATE: info.get("state"),
                }[f.field]
                results.append(f.test(actual))
            if not (all(results) if where.operand.value == "AND" else any(results)):
                return f"where {where.id or ''}".strip()
        return None

    async def _partners(
        self,
        flow: Flow,
        spec: TriggerSpec,
        trigger: FlowTrigger,
        upstream: Execution,
        info: Mapping[str, Any],
    ) -> list[Execution] | None:
        """With several ``preconditions.flows``: for each entry ``upstream`` does not match, an
        execution that matches it and ended within ``timeWindow`` before ``upstream`` ended and
        after this trigger last started a flow (a start resets the count); ``None`` if one is
        missing."""
        assert trigger.preconditions is not None
        pre = trigger.preconditions
        end = upstream.history[-1].date if upstream.history else utcnow()
        bounds = pre.time_window.bounds(end)
        if bounds is None:
            return None
        start = bounds[0]

        def last_start(conn: Connection) -> datetime | None:
            found = conn.execute(
                select(func.max(flow_trigger_events.c.created)).where(
                    flow_trigger_events.c.namespace == flow.namespace,
                    flow_trigger_events.c.flow_id == flow.id,
                    flow_trigger_events.c.trigger_id == spec.id,
                    flow_trigger_events.c.outcome == "started",
                )
            ).scalar()
            conn.commit()
            return _aware(found)

        # resetOnSuccess (the default): a start resets the count, the others must end again.
        fired = await self.repo.call(last_start) if pre.reset_on_success else None
        if fired is not None and fired > start:
            start = fired
        partners: list[Execution] = []
        for entry in pre.flows:
            if entry.matches(info):
                continue
            query = select(executions_table.c.id).where(
                executions_table.c.state.in_(entry.states or trigger.states),
                executions_table.c.updated >= start,
                executions_table.c.updated <= end,
            )
            if entry.namespace is not None:
                query = query.where(executions_table.c.namespace == entry.namespace)
            if entry.flow_id is not None:
                query = query.where(executions_table.c.flow_id == entry.flow_id)
            query = query.order_by(executions_table.c.updated.desc()).limit(50)

            def ids(conn: Connection, query: Any = query) -> list[str]:
                found = [r[0] for r in conn.execute(query)]
                conn.commit()
                return found

            match = None
            for execution_id in await self.repo.call(ids):
                candidate = await self.repo.get_execution(execution_id)
                if candidate is not None and entry.matches(_described(candidate)):
                    match = candidate
                    break
            if match is None:
                return None
            partners.append(match)
        return partners

    async def _depth_of(self, execution_id: str) -> int:
        def run(conn: Connection) -> int:
            found = conn.execute(
                select(flow_trigger_events.c.depth).where(
                    flow_trigger_events.c.execution_id == execution_id
                )
            ).scalar()
            conn.commit()
            return int(found or 0)

        return await self.repo.call(run)

    def _persist(
        self, flow: Flow, spec: TriggerSpec, upstream: Execution, depth: int, now: datetime
    ) -> Callable[[Execution, Lease], Coroutine[Any, Any, None]]:
        async def persist(execution: Execution, lease: Lease) -> None:
            def run(conn: Connection) -> None:
                try:
                    conn.execute(
                        insert(flow_trigger_events).values(
                            **_event(flow, spec, upstream, "started", depth),
                            execution_id=execution.id,
                        )
                    )
                except IntegrityError:
                    conn.rollback()
                    raise _Handled from None
                upsert_state(
                    conn,
                    flow.namespace,
                    flow.id,
                    spec.id,
                    spec.type,
                    {
                        "last_evaluation": now,
                        "last_execution_id": execution.id,
                        "last_error": None,
                        "last_condition": None,
                    },
                )
                conn.execute(insert(executions_table).values(**execution_row(execution, lease)))
                conn.commit()

            await self.repo.call(run)

        return persist

    async def _record(
        self,
        flow: Flow,
        spec: TriggerSpec,
        upstream: Execution,
        outcome: str,
        now: datetime,
        *,
        error: str | None = None,
        condition: str | None = None,
    ) -> None:
        """Remember an ended execution that started nothing (so it is not looked at again)."""

        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(flow_trigger_events).values(**_event(flow, spec, upstream, outcome, 0))
                )
            except IntegrityError:
                conn.rollback()
                return
            values: dict[str, Any] = {"last_evaluation": now}
            if outcome == "conditions":
                values["last_condition"] = condition
            if error is not None:
                values["last_error"] = error
            upsert_state(conn, flow.namespace, flow.id, spec.id, spec.type, values)
            conn.commit()

        await self.repo.call(run)

    async def _moved(self, flow: Flow, spec: TriggerSpec, now: datetime) -> None:
        """The trigger has handled every execution that ended before ``now``."""

        def run(conn: Connection) -> None:
            values = {"last_date": now, "last_evaluation": now}
            upsert_state(conn, flow.namespace, flow.id, spec.id, spec.type, values)
            conn.commit()

        await self.repo.call(run)


def _event(
    flow: Flow, spec: TriggerSpec, upstream: Execution, outcome: str, depth: int
) -> dict[str, Any]:
    return {
        "namespace": flow.namespace,
        "flow_id": flow.id,
        "trigger_id": spec.id,
        "upstream_id": upstream.id,
        "upstream_attempt": upstream.attempt,
        "outcome": outcome,
        "depth": depth,
        "created": utcnow(),
    }


def _described(execution: Execution) -> dict[str, Any]:
    """The ended execution as Kestra's Flow trigger shows it (``trigger.*``)."""
    history = execution.history
    failed = next((r.task_id for r in execution.task_runs if r.state.value == "FAILED"), None)
    return {
        "executionId": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "flowRevision": execution.flow_revision,
        "state": execution.state.value,
        "startDate": history[0].date.isoformat() if history else None,
        "endDate": history[-1].date.isoformat() if history else None,
        "outputs": dict(execution.outputs),
        "executionLabels": dict(execution.labels),
        "firstFailedTaskId": failed,
        "lastTaskId": execution.task_runs[-1].task_id if execution.task_runs else None,
    }


def _for_conditions(info: Mapping[str, Any], upstream: Execution) -> dict[str, Any]:
    return {
        "id": info["executionId"],
        "namespace": info["namespace"],
        "flowId": info["flowId"],
        "state": info["state"],
        "labels": info["executionLabels"],
        "outputs": info["outputs"],
        # The attempts' states of each retried task run (HasRetryAttempt).
        "retried": [
            [a.state.value for a in r.attempts] for r in upstream.task_runs if len(r.attempts) > 1
        ],
    }


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone columns: they were stored in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
