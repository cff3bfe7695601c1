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

from plait_sdk import PollingTrigger, RealtimeTrigger, UserError
from sqlalchemy import Connection, Select, and_, false, func, insert, select, tuple_, update

from plait.engine import Runner
from plait.flows import Flow, TriggerSpec
from plait.records import Execution, Lease
from plait.server._trigger_gate import conditions_met, record_condition
from plait.storage import SqlRepository, trigger_states
from plait.storage import flows as flows_table
from plait.triggers import FlowTrigger, RecoverMissed, Schedule

log = logging.getLogger("plait.server.triggers")

Clock = Callable[[], datetime]
Key = tuple[str, str, str]
Spawn = Callable[[Coroutine[Any, Any, Execution], str], object]
#: At most this many missed ticks are started per trigger per pass (ALL after a long outage
#: catches up over several passes instead of creating thousands of executions at once).
CATCH_UP_BATCH = 100
#: The most due schedules whose executions are created (and committed) together.
BATCH = 500
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
    state: str | None = None  # a plugin trigger's durable state (JSON)
    watching: str | None = None  # the executions it waits to hear the end of (JSON)
    backfill: str | None = None  # a schedule's backfill (JSON)
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
        # The deployed flows' triggers, read again when the flows table changes.
        self._fingerprint: tuple[Any, ...] | None = None
        self._schedules: dict[Key, tuple[Flow, int, TriggerSpec, Schedule]] = {}
        self._others: dict[Key, tuple[Flow, int, TriggerSpec]] = {}
        self._known: set[Key] = set()  # the triggers that have a state row
        self._flow_triggers: dict[Key, tuple[Flow, int, TriggerSpec]] = {}
        from plait.server._backfill import Backfills
        from plait.server._flow_triggers import FlowTriggers
        from plait.server._polling import Poller
        from plait.server._realtime import Listeners

        self.poller = Poller(runner, repo, spawn)
        self.listeners = Listeners(runner, repo, spawn)
        self.backfills = Backfills(runner, repo, spawn)
        self.flow_triggers = FlowTriggers(runner, repo, spawn)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        try:
            await self._run(stop)
        finally:
            await self.poller.close()
            await self.listeners.close()

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
        """One pass at ``now``: start every due tick; the executions created (for tests).

        A pass costs little whatever the number of schedules: the deployed flows are read
        again only when they changed (a cheap fingerprint query), and only the schedules whose
        next date has come (or that need one) are read from ``trigger_states``."""
        async with self._lock:  # never two passes (so never two evaluations of a trigger) at once
            await self._refresh_flows()
            disabled = await self._disabled()
            created: list[Execution] = []
            realtime: dict[Key, tuple[Flow, int, TriggerSpec]] = {}
            for key, (flow, revision, spec) in self._others.items():
                if key in disabled:
                    continue
                if issubclass(spec.type_info.cls, RealtimeTrigger):
                    realtime[key] = (flow, revision, spec)
                else:
                    self.poller.consider(flow, revision, spec, now)
            self.listeners.sync(realtime)
            new = [k for k in self._schedules if k not in self._known]
            if new:
                await self._create_states(new, now)
            due = [
                (self._schedules[key], state)
                for state in await self._due(now)
                if (key := (state.namespace, state.flow_id, state.trigger_id)) in self._schedules
            ]  # (a row without a schedule: its flow was deleted, disabled or changed)
            for start in range(0, len(due), BATCH):
                batch = _Batch(self.repo)
                tasks = [
                    asyncio.create_task(
                        self._evaluate_one(flow, revision, spec, schedule, state, now, batch)
                    )
                    for (flow, revision, spec, schedule), state in due[start : start + BATCH]
                ]
                await batch.drain(tasks)
                for task in tasks:
                    created += task.result()
            created += await self.backfills.run(self._schedules, disabled, now)
            if self._flow_triggers:
                c = trigger_states.c
                keys = list(self._flow_triggers)
                rows = await self.states(
                    select(trigger_states).where(
                        tuple_(c.namespace, c.flow_id, c.trigger_id).in_(keys)
                    )
                )
                seen = {
                    (s.namespace, s.flow_id, s.trigger_id): (s.last_date, s.disabled) for s in rows
                }
                created += await self.flow_triggers.evaluate(
                    list(self._flow_triggers.values()), seen, now
                )
            # Only the first pass after a start finds ticks missed while the server was down.
            self._seen.update(self._schedules)
            return created

    async def _refresh_flows(self) -> None:
        """Re-read the deployed flows' triggers when the flows table changed (every deploy,
        edit or delete adds a row)."""

        def fingerprint(conn: Connection) -> tuple[Any, ...]:
            row = conn.execute(select(func.count(), func.max(flows_table.c.created))).one()
            conn.commit()
            return tuple(row)

        mark = await self.repo.call(fingerprint)
        if mark == self._fingerprint:
            return
        schedules: dict[Key, tuple[Flow, int, TriggerSpec, Schedule]] = {}
        others: dict[Key, tuple[Flow, int, TriggerSpec]] = {}
        flow_triggers: dict[Key, tuple[Flow, int, TriggerSpec]] = {}
        for stored in await self.repo.list_flows():
            try:
                flow = await self.runner.flow_of(stored.namespace, stored.flow_id, stored.revision)
            except UserError:
                continue
            if flow.disabled:
                continue
            for spec in flow.triggers:
                info = spec.type_info
                if spec.disabled or info is None:
                    continue
                key = (flow.namespace, flow.id, spec.id)
                if info.cls is Schedule:
                    schedule = Schedule.model_validate(spec.properties)
                    schedules[key] = (flow, stored.revision, spec, schedule)
                elif info.cls is FlowTrigger:
                    flow_triggers[key] = (flow, stored.revision, spec)
                elif issubclass(info.cls, PollingTrigger | RealtimeTrigger):
                    others[key] = (flow, stored.revision, spec)

        def keys(conn: Connection) -> set[Key]:
            c = trigger_states.c
            rows = conn.execute(select(c.namespace, c.flow_id, c.trigger_id)).all()
            conn.commit()
            return {(r[0], r[1], r[2]) for r in rows}

        self._known = await self.repo.call(keys)
        self._schedules, self._others, self._fingerprint = schedules, others, mark
        self._flow_triggers = flow_triggers

    async def _disabled(self) -> set[Key]:
        def run(conn: Connection) -> set[Key]:
            c = trigger_states.c
            rows = conn.execute(select(c.namespace, c.flow_id, c.trigger_id).where(c.disabled))
            found = {(r[0], r[1], r[2]) for r in rows}
            conn.commit()
            return found

        return await self.repo.call(run)

    async def _due(self, now: datetime) -> list[TriggerState]:
        """The schedules' rows whose next date has come, or that need one (enabled again)."""
        c = trigger_states.c
        query = select(trigger_states).where(
            c.type == Schedule.type_name,
            c.disabled == false(),
            (c.next_date <= now) | c.next_date.is_(None),
        )
        return await self.states(query)

    async def _create_states(self, keys: list[Key], now: datetime) -> None:
        """A new schedule starts with its next tick: it does not fire for the past."""
        rows = [
            {
                "namespace": key[0],
                "flow_id": key[1],
                "trigger_id": key[2],
                "type": Schedule.type_name,
                "next_date": self._schedules[key][3].next_after(now),
                "disabled": False,
            }
            for key in keys
        ]

        def run(conn: Connection) -> None:
            c = trigger_states.c
            have = {
                (r[0], r[1], r[2])
                for r in conn.execute(select(c.namespace, c.flow_id, c.trigger_id))
            }
            fresh = [r for r in rows if (r["namespace"], r["flow_id"], r["trigger_id"]) not in have]
            if fresh:  # a row made meanwhile (disabled through the API) is kept as it is
                conn.execute(insert(trigger_states), fresh)
            conn.commit()

        await self.repo.call(run)
        self._known.update(keys)
        for key in keys:
            self._seen.add(key)

    async def _evaluate_one(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        schedule: Schedule,
        state: TriggerState,
        now: datetime,
        batch: _Batch | None = None,
    ) -> list[Execution]:
        key = (flow.namespace, flow.id, spec.id)
        first_pass = key not in self._seen
        self._seen.add(key)
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
            execution = await self._fire(flow, revision, spec, schedule, state, tick, now, batch)
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
        batch: _Batch | None = None,
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
                persist=self._persist(state, expected, following, tick, now, batch),
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
        batch: _Batch | None = None,
    ) -> Callable[[Execution, Lease], Awaitable[None]]:
        async def persist(execution: Execution, lease: Lease) -> None:
            def run(conn: Connection) -> bool:
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
                return moved.rowcount == 1

            if batch is not None:
                stored = await batch.add(execution, lease, run)
            else:
                stored = (await self.repo.insert_executions([(execution, lease, run)]))[0]
            if not stored:
                raise Moved

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

    async def states(self, query: Select[Any] | None = None) -> list[TriggerState]:
        """The trigger state rows (``query``: a select of some of them)."""
        statement: Select[Any] = select(trigger_states) if query is None else query

        def run(conn: Connection) -> list[TriggerState]:
            rows = conn.execute(statement).mappings().all()
            conn.commit()
            out = []
            for row in rows:
                fields: dict[str, Any] = {
                    k: _aware(v) if isinstance(v, datetime) else v for k, v in row.items()
                }
                out.append(TriggerState(**fields))
            return out

        return await self.repo.call(run)


class _Batch:
    """The executions of one pass's due ticks, persisted together (``insert_executions``):
    each tick's creation waits in :meth:`add` until every tick of the batch has reached its
    persist (or ended), then one transaction stores them all."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo
        self.items: list[tuple[Execution, Lease, Callable[[Connection], bool]]] = []
        self.waiting: list[asyncio.Future[bool]] = []

    async def add(
        self, execution: Execution, lease: Lease, rows: Callable[[Connection], bool]
    ) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.items.append((execution, lease, rows))
        self.waiting.append(future)
        return await future

    async def drain(self, tasks: list[asyncio.Task[list[Execution]]]) -> None:
        """Flush whenever every unfinished task waits in :meth:`add`, until all are done."""
        spins = 0
        while not all(task.done() for task in tasks):
            if self.waiting and len(self.waiting) == sum(not t.done() for t in tasks):
                await self._flush()
                spins = 0
                continue
            spins += 1
            # A task may be waiting for something else (the database thread): let it run.
            await asyncio.sleep(0 if spins < 50 else 0.001)
        if self.waiting:
            await self._flush()

    async def _flush(self) -> None:
        items, waiting = self.items, self.waiting
        self.items, self.waiting = [], []
        try:
            stored = await self.repo.insert_executions(items)
        except BaseException as error:
            for future in waiting:
                future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for future, ok in zip(waiting, stored, strict=True):
            future.set_result(ok)


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
