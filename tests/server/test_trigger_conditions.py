"""``conditions:`` gate schedules and polling triggers with a controllable clock; a polling
trigger locked by a dead process is skipped until its lock expires or it is unlocked; bad
conditions are validation errors naming the property."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from backends import Backend
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.records import Execution
from plait.runtime import plugin_host
from plait.server._scheduler import Scheduler
from plait.server._trigger_gate import unlock
from plait.storage import SqlRepository
from plait_sdk import ValidationError
from sqlalchemy import update

# A Thursday.
T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


class Loop:
    def __init__(self, runner: Runner, repo: SqlRepository) -> None:
        self.runner = runner
        self.repo = repo
        self.drives: list[asyncio.Task[Execution]] = []

    def scheduler(self) -> Scheduler:
        return Scheduler(self.runner, self.repo, self.spawn, clock=lambda: T0)

    def spawn(self, coro: Coroutine[Any, Any, Execution], what: str) -> object:
        task = asyncio.create_task(coro)
        self.drives.append(task)
        return task

    async def executions(self) -> list[Execution]:
        await asyncio.gather(*self.drives)
        return await self.repo.list_executions(namespace="cond")


@pytest.fixture
async def loop(backend: Backend, tmp_path: Path) -> AsyncIterator[Loop]:
    repo = SqlRepository(backend.url)
    await repo.open()
    runner = Runner(repo, plugin_host(), LocalStorageBackend(tmp_path / "storage"))
    try:
        yield Loop(runner, repo)
    finally:
        await repo.close()


WEEKEND_NIGHTS = """id: nightly
namespace: cond
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.date }}"
triggers:
  - id: midnight
    type: plait.core.Schedule
    cron: "0 0 * * *"
    conditions:
      - type: io.kestra.plugin.core.condition.Or
        conditions:
          - type: io.kestra.plugin.core.condition.Weekend
          - type: io.kestra.plugin.core.condition.PublicHoliday
            country: FR
      - type: io.kestra.plugin.core.condition.TimeBetween
        before: "01:00:00"
"""


async def test_a_schedule_fires_only_the_ticks_whose_conditions_hold(loop: Loop) -> None:
    await loop.runner.deploy(WEEKEND_NIGHTS, file="n.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    fired: list[Execution] = []
    day = datetime(2026, 1, 2, 0, 0, 1, tzinfo=UTC)  # Friday 2 January: not fired
    for n in range(4):
        fired += await s.evaluate(day + timedelta(days=n))
        if n == 0:
            state = (await s.states())[0]
            assert state.last_condition == "condition 1 (Or) is false"
            assert state.next_date == datetime(2026, 1, 3, tzinfo=UTC)  # the tick is consumed
    dates = [(e.trigger or {})["date"][:10] for e in fired]
    assert dates == ["2026-01-03", "2026-01-04"]  # Saturday, Sunday; not Monday 5
    assert (await s.states())[0].last_condition is not None
    # 14 July 2026 (a Tuesday) is a French public holiday; 13 July is not.
    await loop.runner.deploy(WEEKEND_NIGHTS.replace("id: nightly", "id: holiday"), file="h.yaml")
    holiday: list[Execution] = []
    for moment in (datetime(2026, 7, 12, 12), datetime(2026, 7, 13), datetime(2026, 7, 14)):
        holiday += await s.evaluate(moment.replace(tzinfo=UTC) + timedelta(seconds=1))
    assert [(e.trigger or {})["date"][:10] for e in holiday if e.flow_id == "holiday"] == [
        "2026-07-14"
    ]
    await loop.executions()


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, dict[str, int]]]:
    hits: dict[str, int] = {}

    async def handle(request: web.Request) -> web.Response:
        hits[request.path] = hits.get(request.path, 0) + 1
        return web.json_response({"n": hits[request.path]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", hits
    finally:
        await runner.cleanup()


def polled(url: str) -> str:
    return (
        "id: polled\nnamespace: cond\n"
        'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.body.n }}"\n'
        "triggers:\n  - id: poll\n    type: plait.http.Trigger\n"
        f"    uri: {url}/n\n    interval: PT30S\n"
        "    conditions:\n"
        "      - type: io.kestra.plugin.core.condition.Expression\n"
        '        expression: "{{ trigger.body.n is odd }}"\n'
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_polling_event_whose_conditions_fail_starts_nothing(
    loop: Loop, endpoint: tuple[str, dict[str, int]]
) -> None:
    url, hits = endpoint
    await loop.runner.deploy(polled(url), file="p.yaml")
    s = loop.scheduler()
    for n in range(3):
        await s.evaluate(T0 + timedelta(seconds=31 * n))
        await s.poller.settle()
    assert hits == {"/n": 3}
    done = await loop.executions()
    assert sorted((e.trigger or {})["body"]["n"] for e in done) == [1, 3]
    state = (await s.states())[0]
    assert state.last_condition is None  # the last event (3) passed
    await s.evaluate(T0 + timedelta(seconds=31 * 3))
    await s.poller.settle()
    assert (await s.states())[0].last_condition == "condition 1 (Expression) is false"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_dead_processs_lock_holds_until_it_expires_or_is_unlocked(
    loop: Loop, endpoint: tuple[str, dict[str, int]]
) -> None:
    from plait.storage._tables import trigger_states

    url, hits = endpoint
    await loop.runner.deploy(polled(url), file="p.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    await s.poller.settle()
    assert hits == {"/n": 1}

    def dead_lock(conn: Any) -> None:
        conn.execute(
            update(trigger_states).values(
                locked_by="dead-host:1:x", locked_until=T0 + timedelta(minutes=5)
            )
        )
        conn.commit()

    await loop.repo.call(dead_lock)
    await s.evaluate(T0 + timedelta(seconds=31))
    await s.poller.settle()
    assert hits == {"/n": 1}  # locked: not evaluated
    await s.evaluate(T0 + timedelta(minutes=5, seconds=1))  # expired by itself
    await s.poller.settle()
    assert hits == {"/n": 2}
    await loop.repo.call(dead_lock)
    assert await unlock(loop.repo, "cond", "polled", "poll") is True
    assert await unlock(loop.repo, "cond", "polled", "poll") is False
    await s.evaluate(T0 + timedelta(minutes=5, seconds=32))
    await s.poller.settle()
    assert hits == {"/n": 3}
    await loop.executions()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_lock_of_an_exited_process_of_this_host_is_taken_at_once(
    loop: Loop, endpoint: tuple[str, dict[str, int]]
) -> None:
    """A server killed mid-evaluation (kill -9) and started again evaluates at once."""
    from plait.engine._runner import owner_id
    from plait.storage._tables import trigger_states

    url, hits = endpoint
    await loop.runner.deploy(polled(url), file="p.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    await s.poller.settle()
    child = await asyncio.create_subprocess_exec("true")
    await child.wait()  # reaped: its pid runs no more
    host, _pid, token = owner_id().rsplit(":", 2)
    gone = f"{host}:{child.pid}:{token}"

    def killed_lock(conn: Any) -> None:
        conn.execute(
            update(trigger_states).values(locked_by=gone, locked_until=T0 + timedelta(minutes=5))
        )
        conn.commit()

    await loop.repo.call(killed_lock)
    await s.evaluate(T0 + timedelta(seconds=31))
    await s.poller.settle()
    assert hits == {"/n": 2}  # taken over, not waited for
    await loop.executions()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "type: io.kestra.plugin.core.condition.DayWeek\n        dayOfWek: MONDAY",
            "DayWeek: dayOfWeek: Field required; dayOfWek: Extra inputs are not permitted",
        ),
        ("type: acme.Nope", "unknown condition type 'acme.Nope'"),
        (
            "type: io.kestra.plugin.core.condition.MultipleCondition",
            "a flow trigger's `preconditions` replaces MultipleCondition",
        ),
    ],
)
async def test_a_bad_condition_is_a_validation_error(
    loop: Loop, condition: str, message: str
) -> None:
    source = WEEKEND_NIGHTS.split("    conditions:")[0] + f"    conditions:\n      - {condition}\n"
    with pytest.raises(ValidationError) as caught:
        await loop.runner.deploy(source, file="bad.yaml")
    assert "bad.yaml:12:" in str(caught.value)
    assert message in str(caught.value)


async def _plain_render(value: Any, context: Any) -> Any:
    return value  # the conditions below use no template


@pytest.mark.parametrize(
    ("condition", "moment", "execution", "expected"),
    [
        ({"type": "io.kestra.plugin.core.condition.DayWeek", "dayOfWeek": "FRIDAY"},
         datetime(2026, 1, 30, 9, tzinfo=UTC), None, True),
        ({"type": "io.kestra.core.models.conditions.types.DayWeekInMonthCondition",
          "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"},
         datetime(2026, 1, 30, 9, tzinfo=UTC), None, True),
        ({"type": "io.kestra.plugin.core.condition.DayWeekInMonth",
          "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"},
         datetime(2026, 1, 23, 9, tzinfo=UTC), None, False),
        ({"type": "io.kestra.plugin.core.condition.DayWeekInMonth",
          "dayOfWeek": "FRIDAY", "dayInMonth": "SECOND"},
         datetime(2026, 1, 9, 9, tzinfo=UTC), None, True),
        ({"type": "io.kestra.plugin.core.condition.TimeBetween",
          "after": "08:00:00+01:00", "before": "18:00:00+01:00"},
         datetime(2026, 1, 30, 7, 30, tzinfo=UTC), None, True),  # 08:30 in +01:00
        ({"type": "io.kestra.plugin.core.condition.TimeBetween", "after": "08:00:00"},
         datetime(2026, 1, 30, 7, 30, tzinfo=UTC), None, False),
        ({"type": "io.kestra.plugin.core.condition.DateTimeBetween",
          "after": "2026-01-01T00:00:00Z", "before": "2026-02-01T00:00:00Z"},
         datetime(2026, 1, 30, tzinfo=UTC), None, True),
        ({"type": "io.kestra.plugin.core.condition.Weekend", "date": "2026-01-31"},
         datetime(2026, 1, 30, tzinfo=UTC), None, True),
        ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace",
          "namespace": "company", "comparison": "PREFIX"},
         T0, {"namespace": "company.team"}, True),
        ({"type": "io.kestra.plugin.core.condition.ExecutionNamespace",
          "namespace": "company", "prefix": False},
         T0, {"namespace": "company.team"}, False),
        ({"type": "io.kestra.plugin.core.condition.ExecutionStatus", "notIn": ["FAILED"]},
         T0, {"state": "FAILED"}, False),
        ({"type": "io.kestra.plugin.core.condition.ExecutionStatus", "in": ["SUCCESS"]},
         T0, None, False),  # not a flow trigger: no ended execution
        ({"type": "io.kestra.plugin.core.condition.ExecutionLabels",
          "labels": [{"key": "env", "value": "prod"}]},
         T0, {"labels": {"env": "prod", "x": "y"}}, True),
        ({"type": "io.kestra.plugin.core.condition.Or", "conditions": [
            {"type": "io.kestra.plugin.core.condition.Weekend"},
            {"type": "io.kestra.plugin.core.condition.DayWeek", "dayOfWeek": "THURSDAY"}]},
         T0, None, True),
        ({"type": "io.kestra.plugin.core.condition.Not", "conditions": [
            {"type": "io.kestra.plugin.core.condition.DayWeek", "dayOfWeek": "THURSDAY"}]},
         T0, None, False),
    ],
)  # fmt: skip
async def test_each_condition_type(
    condition: dict[str, Any], moment: datetime, execution: Any, expected: bool
) -> None:
    from plait.triggers import ConditionContext, check, parse_condition

    parsed = parse_condition(condition)
    ctx = ConditionContext(
        date=moment, namespace="ns", flow_id="f", render=_plain_render, execution=execution
    )
    assert (await check([parsed], ctx) is None) is expected
