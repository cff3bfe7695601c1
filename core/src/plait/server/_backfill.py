"""Schedule backfills, run by the trigger loop's pass: every tick from start to end once, at
most ``concurrency`` executions running at once, paused, resumed or cancelled through the API.

The progress (``BackfillProgress``, JSON in ``trigger_states.backfill``) moves by
compare-and-swap on its stored text in the transaction that creates each tick's execution:
a crash before the commit leaves the tick to do, a crash after it cannot fire it again, and
two loops (or the loop and an API call) never both win. A finished or cancelled backfill stays
stored (its progress shows), and one asked in the flow's YAML is not started again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plait_sdk import UserError
from sqlalchemy import Connection, and_, select, update

from plait.engine import Runner
from plait.flows import TERMINAL_STATES, Flow, TriggerSpec
from plait.records import Execution, Lease
from plait.storage import SqlRepository, executions, trigger_states
from plait.triggers import Backfill, BackfillProgress, Schedule, begin_backfill

log = logging.getLogger("plait.server.triggers")
Key = tuple[str, str, str]
Found = tuple[Flow, int, TriggerSpec, Schedule]


class Busy(Exception):
    """The stored backfill changed since it was read (someone else moved it)."""


def _where(key: Key) -> Any:
    return and_(
        trigger_states.c.namespace == key[0],
        trigger_states.c.flow_id == key[1],
        trigger_states.c.trigger_id == key[2],
    )


def _dump(progress: BackfillProgress | None) -> str | None:
    return None if progress is None else progress.model_dump_json()


def _swap(conn: Connection, key: Key, old: str | None, new: str | None) -> bool:
    column = trigger_states.c.backfill
    same = column.is_(None) if old is None else column == old
    return bool(
        conn.execute(update(trigger_states).where(_where(key), same).values(backfill=new)).rowcount
    )


async def stored_backfills(repo: SqlRepository) -> dict[Key, str]:
    def run(conn: Connection) -> dict[Key, str]:
        c = trigger_states.c
        rows = conn.execute(
            select(c.namespace, c.flow_id, c.trigger_id, c.backfill).where(c.backfill.is_not(None))
        ).all()
        conn.commit()
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    return await repo.call(run)


async def change(
    repo: SqlRepository,
    key: Key,
    edit: Callable[[BackfillProgress | None], BackfillProgress | None],
) -> BackfillProgress | None:
    """Read the trigger's backfill, apply ``edit`` and store it (compare-and-swap, retried)."""
    for _ in range(20):

        def read(conn: Connection) -> str | None:
            found = conn.execute(select(trigger_states.c.backfill).where(_where(key))).first()
            conn.commit()
            if found is None:
                raise UserError("the trigger loop has not seen this schedule yet; try again")
            return found[0]  # type: ignore[no-any-return]

        old = await repo.call(read)
        new = edit(BackfillProgress.model_validate_json(old) if old else None)
        text = _dump(new)

        def write(conn: Connection, old: str | None = old, text: str | None = text) -> bool:
            done = _swap(conn, key, old, text)
            conn.commit()
            return done

        if await repo.call(write):
            return new
    raise UserError("the backfill kept changing; try again")


class Backfills:
    """The backfills part of the trigger loop's pass."""

    def __init__(self, runner: Runner, repo: SqlRepository, spawn: Callable[..., object]) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn

    async def run(
        self, schedules: dict[Key, Found], disabled: set[Key], now: datetime
    ) -> list[Execution]:
        stored = await stored_backfills(self.repo)
        for key, (_, _, _, schedule) in schedules.items():
            asked = schedule.backfill
            if asked is None or (key in stored and not self._changed(stored[key], asked)):
                continue
            try:
                progress = begin_backfill(asked, schedule, now, from_flow=True)
            except UserError as error:
                log.warning("trigger %s.%s/%s: %s", *key, error)
                continue
            if await self._store(key, stored.get(key), _dump(progress)):
                stored[key] = _dump(progress) or ""
        created: list[Execution] = []
        for key, text in stored.items():
            found = schedules.get(key)
            if found is None or key in disabled:
                continue
            progress = BackfillProgress.model_validate_json(text)
            if progress.finished:
                continue
            created += await self._advance(key, found, text, progress, now)
        return created

    @staticmethod
    def _changed(text: str, asked: Backfill) -> bool:
        """A backfill in the flow differs from the one stored from the flow (start it anew)."""
        old = BackfillProgress.model_validate_json(text)
        if not old.from_flow:
            return False  # one started through the API stays until it ends or is cancelled
        if old.start != asked.start:
            return True
        return asked.end is not None and old.end != asked.end

    async def _store(self, key: Key, old: str | None, new: str | None) -> bool:
        def run(conn: Connection) -> bool:
            done = _swap(conn, key, old, new)
            conn.commit()
            return done

        return await self.repo.call(run)

    async def _advance(
        self, key: Key, found: Found, text: str, progress: BackfillProgress, now: datetime
    ) -> list[Execution]:
        if progress.running:
            alive = await self._alive(progress.running)
            if alive != progress.running:
                progress.running = alive
                new = progress.model_dump_json()
                if not await self._store(key, text, new):
                    return []
                text = new
        created: list[Execution] = []
        while progress.active and progress.current_date is not None:
            if len(progress.running) >= progress.concurrency:
                break
            execution, text = await self._fire(key, found, text, progress, now)
            if execution is None:
                break
            created.append(execution)
        return created

    async def _alive(self, ids: list[str]) -> list[str]:
        def run(conn: Connection) -> dict[str, str]:
            rows = conn.execute(
                select(executions.c.id, executions.c.state).where(executions.c.id.in_(ids))
            ).all()
            conn.commit()
            return {r[0]: r[1] for r in rows}

        states = await self.repo.call(run)
        terminal = {s.value for s in TERMINAL_STATES}
        return [i for i in ids if i in states and states[i] not in terminal]

    async def _fire(
        self, key: Key, found: Found, text: str, progress: BackfillProgress, now: datetime
    ) -> tuple[Execution | None, str]:
        flow, revision, spec, schedule = found
        tick = progress.current_date
        assert tick is not None
        zone = ZoneInfo(schedule.timezone)
        following = schedule.next_after(tick)
        variables = {
            "id": spec.id,
            "type": Schedule.type_name,
            "date": tick.astimezone(zone).isoformat(),
            "next": following.astimezone(zone).isoformat(),
            "previous": schedule.previous_before(tick).astimezone(zone).isoformat(),
            "backfill": True,
        }
        moved = progress.model_copy(deep=True)
        moved.current_date = following if following <= progress.end else None
        moved.done += 1
        holder: dict[str, str] = {}

        async def persist(execution: Execution, lease: Lease) -> None:
            moved.running = [*progress.running, execution.id]
            new = holder["new"] = moved.model_dump_json()

            def rows(conn: Connection) -> bool:
                return _swap(conn, key, text, new)

            if not (await self.repo.insert_executions([(execution, lease, rows)]))[0]:
                raise Busy

        try:
            execution = await self.runner.create(
                flow,
                revision,
                {**spec.inputs, **progress.inputs},
                labels={**progress.labels, "backfill": "true"},
                trigger=variables,
                persist=persist,
            )
        except Busy:
            return None, text
        except UserError as error:
            log.warning("trigger %s.%s/%s: backfill paused: %s", *key, error)
            # A tick that cannot start (its inputs do not fit) pauses the backfill: shown.
            paused = progress.model_copy(update={"paused": True})
            await self._store(key, text, paused.model_dump_json())
            progress.paused = True
            return None, text
        progress.current_date, progress.done = moved.current_date, moved.done
        progress.running = moved.running
        self.spawn(self.runner.drive(flow, execution), f"execution {execution.id}")
        return execution, holder["new"]
