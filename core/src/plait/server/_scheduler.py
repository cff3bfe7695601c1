"""The trigger loop: fires ``plait.core.Schedule`` ticks, each exactly once across restarts.

Every pass (``evaluate(now)``) reads the enabled flows' schedule triggers and their state rows
(``trigger_states``). A due tick creates its execution in ONE transaction with the state row's
move to the next date, guarded by compare-and-swap on the old ``next_date``: a crash before the
commit loses nothing (the tick is still due at the next start), a crash after it cannot fire the
tick again. The clock is injected, so tests drive the loop through time without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from plait_sdk import PollingTrigger, UserError
from sqlalchemy import Connection, and_, insert, select, update

from plait.engine import Execution, Lease
from plait.engine._runner import Runner
from plait.flows import Flow, TriggerSpec
from plait.server._trigger_gate import conditions_met, record_condition
from plait.storage import SqlRepository, execution_row
from plait.storage._tables import executions as executions_table
from plait.storage._tables import trigger_states
from plait.triggers import FlowTrigger, RecoverMissed, Schedule

log = logging.getLogger("plait.server.triggers")

Clock = Callable[[], datetime]
Spawn = Callable[[Coroutine[Any, Any, Execution], str], object]
#: At most this many missed ticks are started per trigger per pass (ALL after a long outage
#: catches up over several passes instead of creating thousands of executions at once).
CATCH_UP_BATCH = 100
#: At a start, a due tick older than this was missed while the server was down.
MISSED_AFTER = timedelta(seconds=60)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class TriggerState:
    namespace: str
    flow_id: str
    trigger_id: str
    type: str
    next_date: datetime | None = None
    last_date: datetime | None = None
    last_evaluation: datetime | None = None
    last_execution_id: str | None = None
    last_error: str | None = None
    disabled: bool = False
    locked_by: str | None = None
    locked_until: datetime | None = None
    last_condition: str | None = None


class Moved(Exception):
    """The state row was moved by someone else since it was read (the tick is theirs)."""


class Scheduler:
    """One per server. ``evaluate(now)`` is one pass; ``run()`` passes until cancelled."""

    def __init__(
        self,
        runner: Runner,
        repo: SqlRepository,
        spawn: Spawn,
        *,
        clock: Clock = system_clock,
        interval: float = 1.0,
    ) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn
        self.clock = clock
        self.interval = interval
        # Triggers evaluated by this process: ticks due at the first evaluation after a start
        # were missed while the server was down (recoverMissedSchedules decides).
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = asyncio.Lock()
        from plait.server._flow_triggers import FlowTriggers
        from plait.server._polling import Poller

        self.poller = Poller(runner, repo, spawn)
        self.flow_triggers = FlowTriggers(runner, repo, spawn)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        try:
            await self._run(stop)
        finally:
            await self.poller.close()

    async def _run(self, stop: asyncio.Event | None) -> None:
        while stop is None or not stop.is_set():
            try:
                await self.evaluate(self.clock())
            except Exception:  # a broken pass is logged; the loop keeps going
                log.exception("trigger loop pass failed")
            if stop is None:
                await asyncio.sleep(self.interval)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)

    async def evaluate(self, now: datetime) -> list[Execution]:
        """One pass at ``now``: start every due tick; the executions created (for tests)."""
        async with self._lock:  # never two passes (so never two evaluations of a trigger) at once
            states = {(s.namespace, s.flow_id, s.trigger_id): s for s in await self.states()}
            created: list[Execution] = []
            flow_triggers: list[tuple[Flow, int, TriggerSpec]] = []
            for stored in await self.repo.list_flows():
                try:
                    flow = await self.runner.flow_of(
                        stored.namespace, stored.flow_id, stored.revision
                    )
                except UserError:
                    continue
                if flow.disabled:
                    continue
                for spec in flow.triggers:
                    info = spec.type_info
                    if spec.disabled or info is None:
                        continue
                    key = (flow.namespace, flow.id, spec.id)
                    if info.cls is FlowTrigger:
                        flow_triggers.append((flow, stored.revision, spec))
                        continue
                    if info.cls is not Schedule and issubclass(info.cls, PollingTrigger):
                        state = states.get(key)
                        if state is None or not state.disabled:
                            self.poller.consider(flow, stored.revision, spec, now)
                        continue
                    if info.cls is not Schedule:
                        continue
                    created += await self._evaluate_one(
                        flow, stored.revision, spec, states.get(key), now
                    )
            seen = {k: (s.last_date, s.disabled) for k, s in states.items()}
            created += await self.flow_triggers.evaluate(flow_triggers, seen, now)
            return created

    async def _evaluate_one(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        state: TriggerState | None,
        now: datetime,
    ) -> list[Execution]:
        schedule = Schedule.model_validate(spec.properties)
        key = (flow.namespace, flow.id, spec.id)
        first_pass = key not in self._seen
        self._seen.add(key)
        if state is None:
            # A new trigger starts with the next tick: it does not fire for the past.
            state = TriggerState(
                flow.namespace, flow.id, spec.id, Schedule.type_name, schedule.next_after(now)
            )
            await self.repo.call(lambda conn: _insert_state(conn, state))
            return []
        if state.disabled:
            return []
        if state.next_date is None:
            # Made by disable/enable (enable clears it): the trigger goes on from now, the
            # ticks it skipped while disabled were not missed.
            await self._skip(state, schedule.next_after(now), now)
            return []
        due: list[datetime] = []
        tick = state.next_date
        while tick <= now and len(due) < CATCH_UP_BATCH + 1:
            due.append(tick)
            tick = schedule.next_after(tick)
        if not due:
            return []
        if first_pass and (len(due) > 1 or due[-1] < now - MISSED_AFTER):
            policy = schedule.recover_missed_schedules
            if policy is RecoverMissed.NONE:
                await self._skip(state, schedule.next_after(now), now)
                return []
            if policy is RecoverMissed.LAST:
                last = schedule.previous_before(now + timedelta(microseconds=1))
                due = [last if last >= due[0] else due[-1]]
        due = due[:CATCH_UP_BATCH]
        created = []
        for tick in due:
            execution = await self._fire(flow, revision, spec, schedule, state, tick, now)
            if execution is None:
                break
            created.append(execution)
        return created

    async def _fire(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        schedule: Schedule,
        state: TriggerState,
        tick: datetime,
        now: datetime,
    ) -> Execution | None:
        zone = ZoneInfo(schedule.timezone)
        following = schedule.next_after(tick)
        variables = {
            "id": spec.id,
            "type": Schedule.type_name,
            "date": tick.astimezone(zone).isoformat(),
            "next": following.astimezone(zone).isoformat(),
            "previous": schedule.previous_before(tick).astimezone(zone).isoformat(),
        }
        expected = state.next_date
        reason = await conditions_met(self.runner, flow, spec, tick, variables)
        if reason is not None:
            # The tick is consumed without an execution (as Kestra): the next one is due next.
            await self._skip(state, following, now)
            await record_condition(self.repo, flow, spec, now, reason)
            state.last_condition = reason
            return None
        try:
            execution = await self.runner.create(
                flow,
                revision,
                spec.inputs,
                trigger=variables,
                persist=self._persist(state, expected, following, tick, now),
            )
        except Moved:
            return None
        except UserError as error:
            log.warning("trigger %s.%s/%s: %s", flow.namespace, flow.id, spec.id, error)
            await self._skip(state, following, now, error=str(error))
            return None
        state.next_date, state.last_date = following, tick
        state.last_execution_id, state.last_error = execution.id, None
        self.spawn(self.runner.drive(flow, execution), f"execution {execution.id}")
        return execution

    def _persist(
        self,
        state: TriggerState,
        expected: datetime | None,
        following: datetime,
        tick: datetime,
        now: datetime,
    ) -> Callable[[Execution, Lease], Awaitable[None]]:
        async def persist(execution: Execution, lease: Lease) -> None:
            def run(conn: Connection) -> None:
                moved = conn.execute(
                    update(trigger_states)
                    .where(_key(state), _next_is(expected))
                    .values(
                        next_date=following,
                        last_date=tick,
                        last_evaluation=now,
                        last_execution_id=execution.id,
                        last_error=None,
                        last_condition=None,
                    )
                )
                if moved.rowcount != 1:
                    conn.rollback()
                    raise Moved
                conn.execute(insert(executions_table).values(**execution_row(execution, lease)))
                conn.commit()

            await self.repo.call(run)

        return persist

    async def _skip(
        self, state: TriggerState, following: datetime, now: datetime, error: str | None = None
    ) -> None:
        expected = state.next_date

        def run(conn: Connection) -> None:
            conn.execute(
                update(trigger_states)
                .where(_key(state), _next_is(expected))
                .values(next_date=following, last_evaluation=now, last_error=error)
            )
            conn.commit()

        await self.repo.call(run)
        state.next_date, state.last_error = following, error

    async def states(self) -> list[TriggerState]:
        def run(conn: Connection) -> list[TriggerState]:
            rows = conn.execute(select(trigger_states)).mappings().all()
            conn.commit()
            out = []
            for row in rows:
                fields: dict[str, Any] = {
                    k: _aware(v) if isinstance(v, datetime) else v for k, v in row.items()
                }
                out.append(TriggerState(**fields))
            return out

        return await self.repo.call(run)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone columns: they were stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _next_is(expected: datetime | None) -> Any:
    column = trigger_states.c.next_date
    return column.is_(None) if expected is None else column == expected


def _key(state: TriggerState) -> Any:
    return and_(
        trigger_states.c.namespace == state.namespace,
        trigger_states.c.flow_id == state.flow_id,
        trigger_states.c.trigger_id == state.trigger_id,
    )


def _insert_state(conn: Connection, state: TriggerState) -> None:
    conn.execute(
        insert(trigger_states).values(
            namespace=state.namespace,
            flow_id=state.flow_id,
            trigger_id=state.trigger_id,
            type=state.type,
            next_date=state.next_date,
            disabled=False,
        )
    )
    conn.commit()


async def set_disabled(
    repo: SqlRepository, namespace: str, flow_id: str, trigger_id: str, type_name: str, off: bool
) -> None:
    """Disable or enable one trigger (its row is created if the loop has not seen it yet).

    Enabling clears the next date: a schedule goes on from its next tick after now instead of
    firing the ticks it skipped while disabled."""
    state = TriggerState(namespace, flow_id, trigger_id, type_name)
    values: dict[str, Any] = {"disabled": off} if off else {"disabled": off, "next_date": None}

    def run(conn: Connection) -> None:
        changed = conn.execute(update(trigger_states).where(_key(state)).values(**values))
        if changed.rowcount == 0:
            conn.execute(
                insert(trigger_states).values(
                    namespace=namespace,
                    flow_id=flow_id,
                    trigger_id=trigger_id,
                    type=type_name,
                    disabled=off,
                )
            )
        conn.commit()

    await repo.call(run)
