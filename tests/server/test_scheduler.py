"""The trigger loop with a controllable clock: each Schedule tick fires exactly once (across
restarts and concurrent loops), missed ticks follow recoverMissedSchedules, DST is handled as
cron does, and trigger.date / next / previous reach the flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.records import Execution
from plait.runtime import plugin_host
from plait.server._scheduler import Scheduler, set_disabled
from plait.storage import SqlRepository

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


def flow(cron: str, *, extra: str = "", inputs: str = "", flow_id: str = "tick") -> str:
    return (
        f"id: {flow_id}\nnamespace: sched\n"
        + inputs
        + 'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.date }}"\n'
        + "triggers:\n  - id: cron\n    type: plait.core.Schedule\n"
        + f'    cron: "{cron}"\n'
        + extra
    )


class Loop:
    """A runner over the backend and a scheduler whose clock the test moves."""

    def __init__(self, runner: Runner, repo: SqlRepository) -> None:
        self.runner = runner
        self.repo = repo
        self.now = T0
        self.drives: list[asyncio.Task[Execution]] = []

    def scheduler(self) -> Scheduler:
        """A fresh scheduler: what a restarted server starts with."""
        return Scheduler(self.runner, self.repo, self.spawn, clock=lambda: self.now)

    def spawn(self, coro: Coroutine[Any, Any, Execution], what: str) -> object:
        task = asyncio.create_task(coro)
        self.drives.append(task)
        return task

    async def executions(self) -> list[Execution]:
        await asyncio.gather(*self.drives)
        found = await self.repo.list_executions(namespace="sched")
        return sorted(found, key=lambda e: (e.trigger or {}).get("date", ""))


@pytest.fixture
async def loop(backend: Backend, tmp_path: Path) -> AsyncIterator[Loop]:
    repo = SqlRepository(backend.url)
    await repo.open()
    runner = Runner(repo, plugin_host(), LocalStorageBackend(tmp_path / "storage"))
    try:
        yield Loop(runner, repo)
    finally:
        await repo.close()


def dates(executions: list[Execution]) -> list[str]:
    return [(e.trigger or {})["date"] for e in executions]


async def test_each_tick_fires_once_with_date_next_and_previous(loop: Loop) -> None:
    await loop.runner.deploy(flow("*/1 * * * *"), file="f.yaml")
    s = loop.scheduler()
    assert await s.evaluate(T0) == []  # a new trigger does not fire for the past
    assert await s.evaluate(T0 + timedelta(seconds=29)) == []
    fired = await s.evaluate(T0 + timedelta(seconds=30))
    assert len(fired) == 1
    assert await s.evaluate(T0 + timedelta(seconds=31)) == []  # same tick: nothing again
    fired = await s.evaluate(T0 + timedelta(seconds=95))
    assert len(fired) == 1
    done = await loop.executions()
    assert dates(done) == ["2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00"]
    trigger = done[0].trigger or {}
    assert trigger["next"] == "2026-01-01T00:02:00+00:00"
    assert trigger["previous"] == "2026-01-01T00:00:00+00:00"
    assert trigger["type"] == "plait.core.Schedule"
    assert {e.state.value for e in done} == {"SUCCESS"}
    states = await s.states()
    assert states[0].next_date == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    assert states[0].last_execution_id == done[1].id


async def test_two_loops_on_one_database_fire_a_tick_once(loop: Loop) -> None:
    await loop.runner.deploy(flow("* * * * *"), file="f.yaml")
    first, second = loop.scheduler(), loop.scheduler()
    await first.evaluate(T0)
    later = T0 + timedelta(seconds=30)
    results = await asyncio.gather(first.evaluate(later), second.evaluate(later))
    assert sum(len(r) for r in results) == 1
    assert len(await loop.executions()) == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("ALL", ["00:01", "00:02", "00:03", "00:04", "00:05"]),
        ("LAST", ["00:05"]),
        ("NONE", []),
    ],
)
async def test_ticks_missed_while_down_follow_recover_missed_schedules(
    loop: Loop, policy: str, expected: list[str]
) -> None:
    source = flow("* * * * *", extra=f"    recoverMissedSchedules: {policy}\n")
    await loop.runner.deploy(source, file="f.yaml")
    await loop.scheduler().evaluate(T0)
    # The server was down from T0 until 00:05:10; a new process starts its loop then.
    restarted = loop.scheduler()
    await restarted.evaluate(T0 + timedelta(minutes=4, seconds=40))
    done = await loop.executions()
    assert [d[11:16] for d in dates(done)] == expected
    state = (await restarted.states())[0]
    assert state.next_date == datetime(2026, 1, 1, 0, 6, tzinfo=UTC)
    # Running on normally afterwards: the next tick fires once.
    await restarted.evaluate(T0 + timedelta(minutes=5, seconds=31))
    assert len(await loop.executions()) == len(expected) + 1


async def test_a_0230_paris_job_runs_once_on_both_dst_change_days(loop: Loop) -> None:
    source = flow("30 2 * * *", extra="    timezone: Europe/Paris\n")
    await loop.runner.deploy(source, file="f.yaml")
    s = loop.scheduler()
    fired: list[str] = []
    for start in (datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 10, 24, 12, tzinfo=UTC)):
        s = loop.scheduler()  # a restart before each change day (NONE/ALL do not matter here)
        await set_disabled(loop.repo, "sched", "tick", "cron", "plait.core.Schedule", False)
        await _reset(loop, start)
        await s.evaluate(start)
        moment = start
        while moment < start + timedelta(days=2):
            moment += timedelta(minutes=15)
            fired += dates(await s.evaluate(moment))
    assert fired == [
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that night: the first minute after
        "2026-03-30T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # 02:30 happens twice that night: once
        "2026-10-26T02:30:00+01:00",
    ]


async def _reset(loop: Loop, moment: datetime) -> None:
    from plait.storage._tables import trigger_states
    from sqlalchemy import delete

    def run(conn: Any) -> None:
        conn.execute(delete(trigger_states))
        conn.commit()

    await loop.repo.call(run)


async def test_six_fields_nicknames_and_inputs(loop: Loop) -> None:
    source = flow(
        "*/10 * * * * *",
        inputs="inputs:\n  - id: who\n    type: STRING\n",
        extra="    inputs:\n      who: cron\n",
    )
    await loop.runner.deploy(source, file="f.yaml")
    await loop.runner.deploy(flow("@hourly", flow_id="hourly"), file="g.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    fired = await s.evaluate(T0 + timedelta(seconds=10))
    assert dates(fired) == ["2026-01-01T00:00:40+00:00"]
    assert fired[0].inputs == {"who": "cron"}
    assert await s.evaluate(T0 + timedelta(seconds=15)) == []
    hourly = await s.evaluate(T0 + timedelta(minutes=59, seconds=31))
    assert dates([e for e in hourly if e.flow_id == "hourly"]) == ["2026-01-01T01:00:00+00:00"]
    await loop.executions()


async def test_invalid_inputs_are_the_last_error_and_the_loop_moves_on(loop: Loop) -> None:
    source = flow(
        "* * * * *",
        inputs="inputs:\n  - id: n\n    type: INT\n",
        extra="    inputs:\n      n: not-a-number\n",
    )
    await loop.runner.deploy(source, file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    assert await s.evaluate(T0 + timedelta(seconds=31)) == []
    state = (await s.states())[0]
    assert state.last_error is not None
    assert "inputs.n" in state.last_error
    assert state.next_date == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)


async def test_a_disabled_trigger_or_flow_does_not_fire(loop: Loop) -> None:
    await loop.runner.deploy(flow("* * * * *"), file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    await set_disabled(loop.repo, "sched", "tick", "cron", "plait.core.Schedule", True)
    assert await s.evaluate(T0 + timedelta(seconds=31)) == []
    await set_disabled(loop.repo, "sched", "tick", "cron", "plait.core.Schedule", False)
    # Enabled again: it goes on from the next tick, not firing the one skipped while disabled.
    assert await s.evaluate(T0 + timedelta(seconds=32)) == []
    assert dates(await s.evaluate(T0 + timedelta(seconds=91))) == ["2026-01-01T00:02:00+00:00"]
    await loop.runner.deploy(
        flow("* * * * *").replace("tasks:", "disabled: true\ntasks:"), file="f"
    )
    assert await s.evaluate(T0 + timedelta(minutes=3)) == []
    await loop.executions()


async def test_a_trigger_disabled_before_the_loop_saw_it_starts_when_enabled(loop: Loop) -> None:
    await set_disabled(loop.repo, "sched", "tick", "cron", "plait.core.Schedule", True)
    await loop.runner.deploy(flow("* * * * *"), file="f.yaml")
    s = loop.scheduler()
    assert await s.evaluate(T0 + timedelta(minutes=5)) == []
    await set_disabled(loop.repo, "sched", "tick", "cron", "plait.core.Schedule", False)
    assert await s.evaluate(T0 + timedelta(minutes=5, seconds=1)) == []
    fired = await s.evaluate(T0 + timedelta(minutes=5, seconds=30))
    assert dates(fired) == ["2026-01-01T00:06:00+00:00"]
    await loop.executions()


# -- polling triggers (the plugins' PollingTrigger types) -----------------------------------------


def http_flow(uri: str, flow_id: str, condition: str = "{{ response.statusCode == 200 }}") -> str:
    return (
        f"id: {flow_id}\nnamespace: sched\n"
        'tasks:\n  - id: log\n    type: plait.core.Log\n    message: "{{ trigger.body }}"\n'
        "triggers:\n  - id: poll\n    type: plait.http.Trigger\n"
        f'    uri: {uri}\n    interval: PT30S\n    responseCondition: "{condition}"\n'
    )


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, dict[str, int], asyncio.Event]]:
    from aiohttp import web

    hits: dict[str, int] = {}
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        hits[request.path] = hits.get(request.path, 0) + 1
        if request.path == "/hang":
            await release.wait()
        return web.json_response({"path": request.path, "n": hits[request.path]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits, release
    finally:
        release.set()
        await runner.cleanup()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_polling_trigger_runs_every_interval_and_starts_the_flow(
    loop: Loop, endpoint: tuple[str, dict[str, int], asyncio.Event]
) -> None:
    url, hits, _ = endpoint
    await loop.runner.deploy(http_flow(f"{url}/ok", "ok"), file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    await s.poller.settle()
    await s.evaluate(T0 + timedelta(seconds=10))  # not due: one call per interval
    await s.poller.settle()
    assert hits == {"/ok": 1}
    await s.evaluate(T0 + timedelta(seconds=30))
    await s.poller.settle()
    assert hits == {"/ok": 2}
    done = await loop.executions()
    assert sorted((e.trigger or {})["body"]["n"] for e in done) == [1, 2]
    assert {(e.trigger or {})["type"] for e in done} == {"plait.http.Trigger"}
    state = (await s.states())[0]
    assert state.last_error is None
    assert state.last_execution_id in {e.id for e in done}
    # The trigger's own metrics (the HTTP call it made) are stored with the execution it started.
    for execution in done:
        metrics = await loop.repo.metrics(execution.id)
        assert {(m.task_id, m.name) for m in metrics} >= {
            ("poll", "response.length"),
            ("poll", "request.duration"),
        }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_failing_or_hanging_polling_trigger_does_not_stop_the_others(
    loop: Loop, endpoint: tuple[str, dict[str, int], asyncio.Event]
) -> None:
    url, hits, release = endpoint
    await loop.runner.deploy(http_flow(f"{url}/hang", "hangs"), file="a.yaml")
    await loop.runner.deploy(http_flow("http://127.0.0.1:9/closed", "fails"), file="b.yaml")
    await loop.runner.deploy(http_flow(f"{url}/ok", "works"), file="c.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    for _ in range(300):  # the working trigger starts its flow while the other one hangs
        if await loop.repo.list_executions(namespace="sched"):
            break
        await asyncio.sleep(0.05)
    found = await loop.repo.list_executions(namespace="sched")
    assert [e.flow_id for e in found] == ["works"]
    # Still hanging: the next pass does not start a second evaluation of it (the working
    # trigger, evaluated in the same pass after it, is the witness that the pass ran).
    await s.evaluate(T0 + timedelta(seconds=31))
    for _ in range(300):
        if len(await loop.repo.list_executions(namespace="sched")) == 2:
            break
        await asyncio.sleep(0.05)
    assert hits["/ok"] == 2
    assert hits["/hang"] == 1
    release.set()
    await s.poller.settle()
    states = {st.flow_id: st for st in await s.states()}
    assert states["fails"].last_error is not None
    assert "Traceback" not in states["fails"].last_error
    await loop.executions()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_disabled_polling_trigger_is_not_evaluated(
    loop: Loop, endpoint: tuple[str, dict[str, int], asyncio.Event]
) -> None:
    url, hits, _ = endpoint
    await loop.runner.deploy(http_flow(f"{url}/ok", "ok"), file="f.yaml")
    await set_disabled(loop.repo, "sched", "ok", "poll", "plait.http.Trigger", True)
    s = loop.scheduler()
    await s.evaluate(T0)
    await s.poller.settle()
    assert hits == {}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_stop_after_is_told_when_the_started_execution_ends(
    loop: Loop, endpoint: tuple[str, dict[str, int], asyncio.Event]
) -> None:
    url, hits, _ = endpoint
    source = http_flow(f"{url}/ok", "ok") + "    stopAfter: [SUCCESS]\n"
    await loop.runner.deploy(source, file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    await s.poller.settle()
    assert [e.state.value for e in await loop.executions()] == ["SUCCESS"]
    await s.evaluate(T0 + timedelta(seconds=30))
    await s.poller.settle()
    assert hits == {"/ok": 1}


# -- backfill --------------------------------------------------------------------------------

BACKFILL = (
    "    backfill:\n      start: 2025-12-31T23:50:00Z\n      end: 2025-12-31T23:59:00Z\n"
    "      concurrency: 3\n"
)


def backfilled(executions: list[Execution]) -> list[str]:
    return sorted(
        (e.trigger or {})["date"] for e in executions if (e.trigger or {}).get("backfill")
    )


async def progress(loop: Loop) -> dict[str, Any]:
    from plait.server._routes_triggers import trigger_list

    found = await trigger_list(loop.runner, loop.repo, "sched")
    out = found[0].backfill
    assert out is not None
    return out.model_dump()


async def test_backfill_fires_every_tick_once_bounded_and_across_restarts(loop: Loop) -> None:
    await loop.runner.deploy(flow("* * * * *", extra=BACKFILL), file="f.yaml")
    held: list[Coroutine[Any, Any, Execution]] = []

    def hold(coro: Coroutine[Any, Any, Execution], what: str) -> None:
        held.append(coro)  # not driven: the executions stay unfinished

    s = Scheduler(loop.runner, loop.repo, hold, clock=lambda: T0)
    first = await s.evaluate(T0)
    assert len(first) == 3  # concurrency 3
    assert await s.evaluate(T0 + timedelta(seconds=1)) == []  # three still running: no more
    shown = await progress(loop)
    assert (shown["done"], shown["total"], shown["running"]) == (3, 10, 3)
    for coro in held:
        loop.drives.append(asyncio.create_task(coro))
    await loop.executions()
    # A restart (fresh loops: two at once, as two processes by mistake) goes on where it was;
    # the flow's backfill is not started anew.
    seconds = 2
    while not (await progress(loop))["finished"]:
        now = T0 + timedelta(seconds=seconds)
        both = await asyncio.gather(loop.scheduler().evaluate(now), loop.scheduler().evaluate(now))
        assert len(both[0]) + len(both[1]) <= 3
        await loop.executions()
        seconds += 1
        assert seconds < 30, await progress(loop)
    dates = backfilled(await loop.executions())
    expected = [f"2025-12-31T23:{m}:00+00:00" for m in range(50, 60)]
    assert dates == expected  # every tick once
    for _ in range(3):
        await loop.scheduler().evaluate(T0 + timedelta(seconds=40))
    assert backfilled(await loop.executions()) == expected  # and never again
    shown = await progress(loop)
    assert (shown["done"], shown["total"], shown["finished"]) == (10, 10, True)


async def test_backfill_pause_unpause_and_cancel(loop: Loop) -> None:
    from plait.server._backfill import change
    from plait.triggers import Backfill, Schedule, begin_backfill

    await loop.runner.deploy(flow("* * * * *"), file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(T0)
    schedule = Schedule(cron="* * * * *")
    asked = Backfill.model_validate(
        {"start": "2025-12-31T23:00:00Z", "end": "2025-12-31T23:59:00Z", "concurrency": 2}
    )
    key = ("sched", "tick", "cron")
    await change(loop.repo, key, lambda old: begin_backfill(asked, schedule, T0))
    assert len(await s.evaluate(T0 + timedelta(seconds=1))) == 2
    await loop.executions()
    await change(loop.repo, key, lambda old: old and old.model_copy(update={"paused": True}))
    assert await s.evaluate(T0 + timedelta(seconds=2)) == []  # paused
    assert (await progress(loop))["paused"]
    await change(loop.repo, key, lambda old: old and old.model_copy(update={"paused": False}))
    assert len(await s.evaluate(T0 + timedelta(seconds=3))) == 2
    await loop.executions()
    await change(loop.repo, key, lambda old: old and old.model_copy(update={"cancelled": True}))
    assert await s.evaluate(T0 + timedelta(seconds=4)) == []
    shown = await progress(loop)
    assert (shown["done"], shown["total"], shown["cancelled"]) == (4, 60, True)
    assert len(backfilled(await loop.executions())) == 4


async def test_a_backfill_too_long_is_refused_with_the_limit() -> None:
    from plait.limits import override_limits
    from plait.triggers import Backfill, Schedule, begin_backfill
    from plait_sdk import UserError

    asked = Backfill.model_validate({"start": "2025-01-01T00:00:00Z"})
    with override_limits(backfill_max_ticks=100), pytest.raises(UserError) as error:
        begin_backfill(asked, Schedule(cron="* * * * *"), T0)
    assert "backfill_max_ticks" in str(error.value)
    assert "PLAIT_LIMIT_BACKFILL_MAX_TICKS" in str(error.value)
