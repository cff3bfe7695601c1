"""Flow-level retry: RETRY_FAILED_TASK (in place) and CREATE_NEW_EXECUTION (a new execution)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from plait.engine._executor import Executor
from plait.engine._runner import Runner
from plait.flows import State, load_flow
from plait.plugins import PluginHost
from plait.records import Execution

from . import testplugin
from .conftest import Harness, runs, state_of


def _started(execution: Execution) -> datetime:
    return next(t.date for t in execution.history if t.state is State.RUNNING)


async def _chain(harness: Harness, last: Execution) -> list[Execution]:
    """Every try of a retried execution, first to last, as stored."""
    chain = [await harness.reload(last)]
    while chain[0].retry_of:
        previous = await harness.repo.get_execution(chain[0].retry_of)
        assert previous is not None
        chain.insert(0, previous)
    return chain


# -- RETRY_FAILED_TASK -----------------------------------------------------------------------


async def test_flow_retry_applies_to_tasks_without_their_own(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: r
        namespace: t
        retry: {type: constant, interval: PT0.01S, maxAttempts: 3}
        tasks:
          - {id: flaky, type: test.Flaky, key: a, failures: 2}
          - id: own
            type: test.Flaky
            key: b
            failures: 2
            retry: {type: constant, interval: PT0.01S, maxAttempts: 2}
        """
    )
    assert state_of(ex, "flaky") == "SUCCESS"
    assert [a.state for a in runs(ex, "flaky")[0].attempts] == [
        State.FAILED,
        State.FAILED,
        State.SUCCESS,
    ]
    # The task's own policy wins: two attempts, not the flow's three.
    assert state_of(ex, "own") == "FAILED"
    assert len(runs(ex, "own")[0].attempts) == 2
    assert ex.state is State.FAILED
    assert ex.retried_by is None  # RETRY_FAILED_TASK never creates an execution


async def test_flow_retry_covers_pure_tasks_and_warning_on_retry(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: r
        namespace: t
        retry:
          type: constant
          interval: PT0.01S
          maxAttempts: 4
          warningOnRetry: true
          behavior: RETRY_FAILED_TASK
        tasks:
          - id: pure
            type: plait.core.Fail
            condition: "{{ taskrun.attemptsCount < 2 }}"  # Kestra's count: 0 on the 1st try
          - id: after
            type: plait.core.Return
            format: "{{ taskrun.attemptsCount }}"
        """
    )
    assert ex.state is State.WARNING
    assert len(runs(ex, "pure")[0].attempts) == 3
    assert state_of(ex, "pure") == "WARNING"
    assert state_of(ex, "after") == "SUCCESS"


async def test_flow_retry_schedules_the_exact_exponential_sequence(host: PluginHost) -> None:
    flow = load_flow(
        """
id: x
namespace: t
retry: {type: exponential, interval: PT3S, maxInterval: PT20S, maxAttempts: 5}
tasks:
  - {id: flaky, type: test.Flaky, key: k}
""",
        registry=host.registry,
    )

    async def render(context: dict[str, object], value: object) -> object:
        return value

    executor = Executor(flow, Execution(namespace="t", flow_id="x", flow_revision=1), render=render)
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    (run,) = (await executor.step(clock)).start
    waits = []
    for _ in range(4):
        clock += timedelta(seconds=1)
        executor.complete(run.id, now=clock, error="boom")
        assert run.state is State.RETRYING
        assert run.retry_at is not None
        waits.append((run.retry_at - clock).total_seconds())
        clock = run.retry_at
        assert (await executor.step(clock)).start == [run]
    assert waits == [3.0, 6.0, 12.0, 20.0]
    executor.complete(run.id, now=clock, error="boom")
    assert run.state is State.FAILED


# -- CREATE_NEW_EXECUTION --------------------------------------------------------------------

NEW_EXECUTION = """
id: nightly
namespace: t
labels: {team: data}
inputs:
  - {id: day, type: STRING}
  - {id: token, type: SECRET}
retry:
  behavior: CREATE_NEW_EXECUTION
  type: constant
  interval: PT0.2S
  maxAttempts: 3
tasks:
  - {id: extract, type: test.Flaky, key: x, failures: FAILURES}
  - {id: echo, type: plait.core.Return, format: "{{ inputs.day }} {{ inputs.token | length }}"}
errors:
  - {id: alert, type: test.Record, key: alerts, value: "{{ execution.retryAttempt }}"}
"""


async def test_a_failed_execution_is_retried_as_a_new_one(harness: Harness) -> None:
    last = await harness.run(
        NEW_EXECUTION.replace("FAILURES", "2"), {"day": "2026-11-25", "token": "abcdef"}
    )
    first, second, third = await _chain(harness, last)
    assert last.id == third.id
    assert [e.state for e in (first, second, third)] == [
        State.RETRIED,
        State.RETRIED,
        State.SUCCESS,
    ]
    assert [t.state for t in first.history][-2:] == [State.FAILED, State.RETRIED]
    assert (first.retried_by, second.retried_by, third.retried_by) == (second.id, third.id, None)
    assert (second.retry_of, third.retry_of) == (first.id, second.id)
    assert [e.retry_attempt for e in (first, second, third)] == [1, 2, 3]
    assert third.first_created == first.created
    # Same revision, inputs (the SECRET re-sealed for the new id) and labels.
    assert third.flow_revision == first.flow_revision
    assert third.labels == {"team": "data"}
    assert third.inputs["day"] == "2026-11-25"
    assert third.inputs["token"] != first.inputs["token"]
    assert "abcdef" not in third.model_dump_json()
    # Derived from the SECRET input (its length): sealed at rest, intact once opened.
    assert set(runs(third, "echo")[0].outputs["value"]) == {"$secret", "$key"}
    opened = harness.runner._reveal(third)
    assert runs(opened, "echo")[0].outputs["value"] == "2026-11-25 6"
    # Each try waited its delay after the one before ended.
    for before, after in ((first, second), (second, third)):
        assert after.scheduled is not None
        assert before.ended is not None
        assert after.scheduled - before.ended >= timedelta(seconds=0.2)
        assert _started(after) >= after.scheduled
    # errors ran in each failed try; the failed try says what comes next.
    assert testplugin.CALLS["alerts"] == [1, 2]
    logs = await harness.repo.logs(first.id)
    assert any(
        r.level == "WARN" and f"try 2 of 3 is execution {second.id}" in r.message for r in logs
    )


async def test_retries_stop_at_max_attempts(harness: Harness) -> None:
    last = await harness.run(
        NEW_EXECUTION.replace("FAILURES", "9").replace("PT0.2S", "PT0.01S"),
        {"day": "d", "token": "t"},
    )
    chain = await _chain(harness, last)
    assert [e.state for e in chain] == [State.RETRIED, State.RETRIED, State.FAILED]
    assert last.error
    assert "flaky failure 3" in last.error
    assert last.retried_by is None


async def test_max_duration_counts_from_the_first_try(harness: Harness) -> None:
    last = await harness.run(
        """
        id: bounded
        namespace: t
        retry:
          behavior: CREATE_NEW_EXECUTION
          type: constant
          interval: PT1S
          maxDuration: PT1.5S
        tasks:
          - {id: x, type: test.Flaky, key: x, failures: 9}
        """
    )
    # Try 2 starts ~1 s after try 1 (within 1.5 s unless try 1 took over 0.5 s); try 3 would
    # start over 2 s after try 1 was created: past maxDuration.
    assert [e.state for e in await _chain(harness, last)] == [State.RETRIED, State.FAILED]


async def test_killed_and_timed_out_executions_are_not_retried(harness: Harness) -> None:
    last = await harness.run(
        """
        id: slow
        namespace: t
        timeout: PT0.2S
        retry: {behavior: CREATE_NEW_EXECUTION, type: constant, interval: PT0.01S, maxAttempts: 3}
        tasks:
          - {id: wait, type: plait.core.Sleep, duration: PT10S}
        """
    )
    assert last.state is State.KILLED
    assert last.retried_by is None
    assert last.retry_of is None


async def test_a_kill_during_the_delay_ends_the_next_try(harness: Harness) -> None:
    flow, revision = await harness.deploy(
        NEW_EXECUTION.replace("FAILURES", "9").replace("PT0.2S", "PT30S")
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {"day": "d", "token": "t"}))
    waiting = await _wait_for_retry(harness, flow.id)
    await harness.runner.kill(waiting.id)
    last = await asyncio.wait_for(running, 10)
    assert last.id == waiting.id
    assert last.state is State.KILLED
    assert last.error == "killed before its scheduled start"
    assert not runs(last, "extract")
    assert testplugin.CALLS["x"] == [1]  # the task never ran a second time


async def test_a_process_stopped_during_the_delay_is_recovered(
    harness: Harness, host: PluginHost
) -> None:
    flow, revision = await harness.deploy(
        NEW_EXECUTION.replace("FAILURES", "1").replace("PT0.2S", "PT0.5S")
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {"day": "d", "token": "t"}))
    waiting = await _wait_for_retry(harness, flow.id)
    running.cancel()  # the process "dies" while the next try waits for its start
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await harness.reload(waiting)).state is State.CREATED
    # A new process over the same store (and key ring, as a restarted local home would have).
    other = Runner(
        harness.repo,
        host,
        harness.runner.storage,
        key_ring=harness.runner.key_ring,
        poll_interval=0.05,
    )
    recovered = await other.recover_all()
    assert [e.id for e in recovered] == [waiting.id]
    last = recovered[0]
    assert last.state is State.SUCCESS
    assert last.scheduled is not None
    assert _started(last) >= last.scheduled
    assert testplugin.CALLS["x"] == [1, 1]


async def test_a_subflow_parent_gets_the_last_try(harness: Harness) -> None:
    await harness.deploy(
        """
        id: child
        namespace: t
        retry: {behavior: CREATE_NEW_EXECUTION, type: constant, interval: PT0.01S, maxAttempts: 2}
        tasks:
          - {id: x, type: test.Flaky, key: c, failures: 1}
        outputs:
          - {id: got, type: INT, value: "{{ outputs.x.value }}"}
        """
    )
    parent = await harness.run(
        """
        id: parent
        namespace: t
        tasks:
          - {id: call, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: child}
          - {id: after, type: plait.core.Return, format: "{{ outputs.call.outputs.got }}"}
        """
    )
    assert parent.state is State.SUCCESS
    call = runs(parent, "call")[0]
    child = await harness.repo.get_execution(call.outputs["executionId"])
    assert child is not None
    assert child.state is State.SUCCESS
    assert child.retry_attempt == 2
    assert runs(parent, "after")[0].outputs["value"] == "2"


async def _wait_for_retry(harness: Harness, flow_id: str) -> Execution:
    """The waiting next try, once the first one has been marked RETRIED."""
    for _ in range(400):
        listed = await harness.repo.list_executions(flow_id=flow_id)
        waiting = [e for e in listed if e.retry_of and e.state is State.CREATED]
        if waiting:
            found = await harness.repo.get_execution(waiting[0].id)
            assert found is not None
            return found
        await asyncio.sleep(0.01)
    raise AssertionError("no retry was created")
