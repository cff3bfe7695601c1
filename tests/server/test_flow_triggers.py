"""Flow triggers in the trigger loop on SQLite and PostgreSQL: an ended execution starts the
downstream flow exactly once (across restarts and two loops), with Kestra's trigger.*
variables; preconditions, where filters and conditions choose; executions that ended while
the loop was down are handled at its start; chains stop at flow_trigger_max_depth."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.limits import override_limits
from plait.records import Execution
from plait.runtime import plugin_host
from plait.server._scheduler import Scheduler
from plait.storage import SqlRepository

UPSTREAM = """id: extract
namespace: team
labels:
  kind: etl
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: ret
    type: plait.core.Return
    format: "2026-05-01"
  - id: maybe_fail
    type: plait.core.Fail
    runIf: "{{ inputs.fail }}"
outputs:
  - id: date
    type: STRING
    value: "{{ outputs.ret.value }}"
"""

DOWNSTREAM = """id: transform
namespace: team
inputs:
  - id: date
    type: STRING
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.executionId }} {{ inputs.date }}"
triggers:
  - id: after_extract
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      date: "{{ trigger.outputs.date }}"
    preconditions:
      id: extract_done
      flows:
        - namespace: team
          flowId: extract
          states: [SUCCESS]
"""


class Loop:
    def __init__(self, runner: Runner, repo: SqlRepository) -> None:
        self.runner = runner
        self.repo = repo
        self.drives: list[asyncio.Task[Execution]] = []

    def scheduler(self, owner: str | None = None) -> Scheduler:
        """A loop; with ``owner``, another process's (its own runner and lock owner)."""
        runner = self.runner
        if owner is not None:
            runner = Runner(self.repo, plugin_host(), self.runner.storage, owner=owner)
        return Scheduler(runner, self.repo, self.spawn, clock=lambda: datetime.now(UTC))

    def spawn(self, coro: Coroutine[Any, Any, Execution], what: str) -> object:
        task = asyncio.create_task(coro)
        self.drives.append(task)
        return task

    async def run(self, flow_id: str, inputs: dict[str, Any] | None = None) -> Execution:
        flow = await self.runner.flow_of("team", flow_id)
        stored = await self.repo.get_flow("team", flow_id)
        assert stored is not None
        return await self.runner.run(flow, stored.revision, inputs or {})

    async def of(self, flow_id: str) -> list[Execution]:
        await asyncio.gather(*self.drives)
        found = await self.repo.list_executions(namespace="team", flow_id=flow_id)
        return sorted(found, key=lambda e: e.id)


@pytest.fixture
async def loop(backend: Backend, tmp_path: Path) -> AsyncIterator[Loop]:
    repo = SqlRepository(backend.url)
    await repo.open()
    runner = Runner(repo, plugin_host(), LocalStorageBackend(tmp_path / "storage"))
    try:
        yield Loop(runner, repo)
    finally:
        await repo.close()


def now() -> datetime:
    return datetime.now(UTC)


async def test_an_ended_execution_starts_the_flow_once_with_kestra_variables(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(DOWNSTREAM, file="d.yaml")
    s = loop.scheduler()
    assert await s.evaluate(now()) == []  # first sight: only ends from now on count
    ok = await loop.run("extract")
    failed = await loop.run("extract", {"fail": True})
    assert (ok.state.value, failed.state.value) == ("SUCCESS", "FAILED")
    started = await s.evaluate(now())
    assert len(started) == 1  # the FAILED one is not in the precondition's states
    assert await s.evaluate(now()) == []
    assert await loop.scheduler().evaluate(now()) == []  # a restart does not start it again
    [done] = await loop.of("transform")
    assert done.state.value == "SUCCESS"
    trigger = done.trigger or {}
    assert trigger["executionId"] == ok.id
    assert trigger["namespace"] == "team"
    assert trigger["flowId"] == "extract"
    assert trigger["state"] == "SUCCESS"
    assert trigger["outputs"] == {"date": "2026-05-01"}
    assert trigger["executionLabels"] == {"kind": "etl"}
    assert trigger["type"] == "plait.core.Flow"
    assert done.inputs == {"date": "2026-05-01"}
    state = {s.trigger_id: s for s in await s.states()}["after_extract"]
    assert state.last_execution_id == done.id
    assert state.locked_by is None  # the pass released its lock


async def test_ends_while_the_loop_was_down_are_handled_at_start(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(DOWNSTREAM, file="d.yaml")
    await loop.scheduler().evaluate(now())
    # The server is down: two executions end (run by another process), no pass runs.
    first, second = await loop.run("extract"), await loop.run("extract")
    restarted = loop.scheduler()
    started = await restarted.evaluate(now() + timedelta(hours=3))
    assert sorted((e.trigger or {})["executionId"] for e in started) == [first.id, second.id]
    assert len(await loop.of("transform")) == 2


async def test_two_loops_on_one_database_start_it_once(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(DOWNSTREAM, file="d.yaml")
    await loop.scheduler().evaluate(now())
    await loop.run("extract")
    one, two = loop.scheduler(), loop.scheduler(owner="other-process")
    results = await asyncio.gather(one.evaluate(now()), two.evaluate(now()))
    await asyncio.gather(*loop.drives)
    assert sum(len(r) for r in results) <= 1
    await one.evaluate(now())
    await two.evaluate(now())
    assert len(await loop.of("transform")) == 1


async def test_a_crash_before_the_commit_loses_nothing(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(DOWNSTREAM, file="d.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    ended = await loop.run("extract")
    real = loop.repo.call
    calls = {"n": 0}

    async def crash(fn: Any) -> Any:
        # The transaction that creates the execution dies (the process is killed there, so
        # nothing after it runs either: the lock stays).
        if calls["n"] or getattr(fn, "__qualname__", "").startswith("FlowTriggers._persist"):
            calls["n"] += 1
            raise KeyboardInterrupt
        return await real(fn)

    loop.repo.call = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        await s.evaluate(now())
    loop.repo.call = real  # type: ignore[method-assign]
    assert calls["n"] >= 1
    assert await loop.of("transform") == []
    # The next process handles it; its predecessor's lock is still there until it expires.
    later = loop.scheduler(owner="next-process")
    assert await later.evaluate(now()) == []
    started = await later.evaluate(now() + timedelta(minutes=6))
    assert [(e.trigger or {})["executionId"] for e in started] == [ended.id]


CHAIN = """id: ping
namespace: team
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.executionId ?? 'first' }}"
triggers:
  - id: again
    type: plait.core.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: team
        flowId: ping
"""


async def test_a_flow_triggering_itself_stops_at_the_depth_limit(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    await loop.runner.deploy(CHAIN, file="c.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    await loop.run("ping")
    with override_limits(flow_trigger_max_depth=3), caplog.at_level(logging.WARNING):
        for _ in range(6):
            await s.evaluate(now())
            await asyncio.gather(*loop.drives)
    assert len(await loop.of("ping")) == 4  # the first one and three in the chain
    assert "would be 4 flow triggers deep (limit flow_trigger_max_depth is 3" in caplog.text
    state = {s.trigger_id: s for s in await s.states()}["again"]
    assert "PLAIT_LIMIT_FLOW_TRIGGER_MAX_DEPTH" in (state.last_error or "")


FILTERED = """id: alert
namespace: team
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.state }}"
triggers:
  - id: on_failure
    type: plait.core.Flow
    states: [FAILED, WARNING]
    preconditions:
      id: team_failures
      where:
        - id: team_ns
          filters:
            - field: NAMESPACE
              type: STARTS_WITH
              value: te
            - field: EXPRESSION
              type: IS_TRUE
              value: "{{ trigger.flowId == 'extract' }}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels:
          kind: etl
      - type: io.kestra.plugin.core.condition.Not
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionOutputs
            expression: "{{ trigger.outputs.date == 'never' }}"
"""


async def test_states_where_filters_and_conditions_choose(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(FILTERED, file="f.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    await loop.run("extract")  # SUCCESS: not in states
    failed = await loop.run("extract", {"fail": True})
    started = await s.evaluate(now())
    assert [(e.trigger or {})["executionId"] for e in started] == [failed.id]
    # Labels do not match: conditions false, nothing starts, the reason shows.
    await loop.runner.deploy(UPSTREAM.replace("kind: etl", "kind: other"), file="u.yaml")
    await loop.run("extract", {"fail": True})
    assert await s.evaluate(now()) == []
    state = {s.trigger_id: s for s in await s.states()}["on_failure"]
    assert state.last_condition == "condition 1 (ExecutionLabels) is false"
    assert len(await loop.of("alert")) == 1


BOTH = """id: report
namespace: team
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.outputs }}"
triggers:
  - id: both_done
    type: plait.core.Flow
    preconditions:
      id: both
      timeWindow:
        window: PT1H
      flows:
        - namespace: team
          flowId: extract
          states: [SUCCESS]
        - namespace: team
          flowId: other
"""
OTHER = """id: other
namespace: team
tasks:
  - id: ret
    type: plait.core.Return
    format: x
outputs:
  - id: other
    type: STRING
    value: "{{ outputs.ret.value }}"
"""


async def test_several_upstream_flows_all_end_within_the_window(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(OTHER, file="o.yaml")
    await loop.runner.deploy(BOTH, file="b.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    await loop.run("extract")
    assert await s.evaluate(now()) == []  # waits for `other`
    await loop.run("other")
    [started] = await s.evaluate(now())
    assert (started.trigger or {})["outputs"] == {"date": "2026-05-01", "other": "x"}
    # A start resets the count: `other` alone again does not start a second one.
    await loop.run("other")
    assert await s.evaluate(now()) == []
    await loop.run("extract")
    assert len(await s.evaluate(now())) == 1


ANY_END = """id: on_any_end
namespace: team
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ trigger.state }}"
triggers:
  - id: ended
    type: plait.core.Flow
    preconditions:
      flows:
        - namespace: team
          flowId: extract
"""


async def test_a_restarted_execution_that_ends_again_counts_again(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(ANY_END, file="a.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    failed = await loop.run("extract", {"fail": True})
    assert len(await s.evaluate(now())) == 1
    again = await loop.runner.restart(failed.id)
    assert (again.state.value, again.attempt) == ("FAILED", 2)
    [restarted] = await s.evaluate(now())
    assert (restarted.trigger or {})["executionId"] == failed.id
    assert await s.evaluate(now()) == []
    assert len(await loop.of("on_any_end")) == 2


async def test_reset_on_success_false_starts_again_on_each_end_in_the_window(loop: Loop) -> None:
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(OTHER, file="o.yaml")
    keep = BOTH.replace(
        "        window: PT1H\n", "        window: PT1H\n      resetOnSuccess: false\n"
    )
    await loop.runner.deploy(keep, file="b.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    await loop.run("extract")
    assert await s.evaluate(now()) == []  # waits for `other`, as with the default
    await loop.run("other")
    assert len(await s.evaluate(now())) == 1
    # Not reset: `extract` still counts, so `other` alone starts it again.
    await loop.run("other")
    assert len(await s.evaluate(now())) == 1
    assert len(await loop.of("report")) == 2


async def test_an_end_outside_the_daily_time_window_starts_nothing(loop: Loop) -> None:
    far = (now() + timedelta(hours=12)).replace(microsecond=0)
    if far.time() >= datetime.strptime("23:59:00", "%H:%M:%S").time():
        far -= timedelta(minutes=5)  # keep startTime < endTime within the day
    window = (
        "      timeWindow:\n        type: DAILY_TIME_WINDOW\n"
        f'        startTime: "{far:%H:%M:%S}"\n'
        f'        endTime: "{far + timedelta(seconds=30):%H:%M:%S}"\n'
    )
    await loop.runner.deploy(UPSTREAM, file="u.yaml")
    await loop.runner.deploy(DOWNSTREAM.replace("      flows:\n", window + "      flows:\n"),
                             file="d.yaml")  # fmt: skip
    s = loop.scheduler()
    await s.evaluate(now())
    await loop.run("extract")
    assert await s.evaluate(now()) == []  # ended outside today's window
    assert await loop.of("transform") == []
    # The same flow with a window around now starts it.
    around = window.replace(f"{far:%H:%M:%S}", "00:00:00", 1).replace(
        f"{far + timedelta(seconds=30):%H:%M:%S}", "23:59:59", 1
    )
    await loop.runner.deploy(DOWNSTREAM.replace("      flows:\n", around + "      flows:\n"),
                             file="d.yaml")  # fmt: skip
    await loop.run("extract")
    assert len(await s.evaluate(now())) == 1


def test_time_window_bounds_follow_kestra() -> None:
    from plait.triggers import TimeWindow

    at = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
    sliding = TimeWindow.model_validate({"type": "SLIDING_WINDOW", "window": "PT2H"})
    assert sliding.bounds(at) == (datetime(2026, 5, 4, 8, 30, tzinfo=UTC), at)
    daily = TimeWindow.model_validate({"type": "DURATION_WINDOW", "window": "P1D"})
    assert daily.bounds(at) == (datetime(2026, 5, 4, tzinfo=UTC), at)
    six = TimeWindow.model_validate({"type": "DURATION_WINDOW", "window": "P1D",
                                     "windowAdvance": "PT6H"})  # fmt: skip
    assert six.bounds(at) == (datetime(2026, 5, 4, 6, tzinfo=UTC), at)
    early = datetime(2026, 5, 4, 5, tzinfo=UTC)
    assert six.bounds(early) == (datetime(2026, 5, 3, 6, tzinfo=UTC), early)
    deadline = TimeWindow.model_validate({"type": "DAILY_TIME_DEADLINE", "deadline": "11:00:00"})
    assert deadline.bounds(at) == (datetime(2026, 5, 4, tzinfo=UTC), at)
    assert deadline.bounds(at + timedelta(hours=1)) is None
    paris = TimeWindow.model_validate({"type": "DAILY_TIME_DEADLINE", "deadline": "12:00+02:00"})
    assert paris.bounds(at) is None  # 12:00 in UTC+2 is 10:00 UTC
    hours = TimeWindow.model_validate(
        {"type": "DAILY_TIME_WINDOW", "startTime": "09:00:00", "endTime": "17:00:00"}
    )
    assert hours.bounds(at) == (datetime(2026, 5, 4, 9, tzinfo=UTC), at)
    assert hours.bounds(at.replace(hour=18)) is None
    for bad, message in (
        ({"type": "DAILY_TIME_DEADLINE"}, "needs `deadline`"),
        ({"type": "DAILY_TIME_WINDOW", "startTime": "09:00:00"}, "needs `startTime` and `endTime`"),
        ({"type": "DAILY_TIME_WINDOW", "startTime": "18:00", "endTime": "09:00"}, "before"),
        ({"window": "PT0S"}, "positive"),
    ):
        with pytest.raises(ValueError, match=message):
            TimeWindow.model_validate(bad)


FLAKY = """id: flaky
namespace: team
inputs:
  - id: fails
    type: INT
    defaults: 1
tasks:
  - id: fetch
    type: plait.core.Fail
    condition: "{{ taskrun.attemptsCount < inputs.fails }}"
    retry:
      type: constant
      interval: PT0.01S
      maxAttempts: 3
"""
# Kestra's documentation example of HasRetryAttempt, on a flow trigger.
ON_RETRY = """id: flow_condition_hasretryattempt
namespace: team
tasks:
  - id: log_message
    type: io.kestra.plugin.core.log.Log
    message: "This flow will execute when any flow task on retry enters a specific state(s)."
triggers:
  - id: flow_condition
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.HasRetryAttempt
        in:
          - FAILED
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: team
        flowId: flaky
"""


async def test_has_retry_attempt_starts_on_a_retried_task(loop: Loop) -> None:
    await loop.runner.deploy(FLAKY, file="flaky.yaml")
    await loop.runner.deploy(ON_RETRY, file="on_retry.yaml")
    s = loop.scheduler()
    await s.evaluate(now())
    clean = await loop.run("flaky", {"fails": 0})  # one attempt: no retry
    assert clean.state.value == "SUCCESS"
    assert await s.evaluate(now()) == []
    state = {t.trigger_id: t for t in await s.states()}["flow_condition"]
    assert state.last_condition == "condition 1 (HasRetryAttempt) is false"
    retried = await loop.run("flaky", {"fails": 1})  # failed once, then succeeded
    assert retried.state.value == "SUCCESS"
    [started] = await s.evaluate(now())
    assert (started.trigger or {})["executionId"] == retried.id
