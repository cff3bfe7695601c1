"""Pause/resume, kill, restart, replay, concurrency limits and subflows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from plait.engine._runner import Runner
from plait.flows import State
from plait_sdk import UserError

from . import testplugin
from .conftest import Harness, runs, state_of

APPROVAL = """
id: approval
namespace: t
tasks:
  - id: before
    type: test.Record
    value: before
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: approved, type: BOOLEAN}
      - {id: reason, type: STRING, defaults: none}
  - id: after
    type: test.Record
    value: "{{ outputs.approve.onResume.approved }}/{{ outputs.approve.onResume.reason }}"
"""


async def test_pause_then_resume_with_validated_inputs(harness: Harness) -> None:
    ex = await harness.run(APPROVAL)
    assert ex.state is State.PAUSED
    assert state_of(ex, "approve") == "PAUSED"
    assert runs(ex, "after") == []
    stored = await harness.reload(ex)
    assert stored.state is State.PAUSED
    with pytest.raises(UserError, match="approved"):
        await harness.runner.resume(ex.id, {"approved": "maybe"})
    assert (await harness.reload(ex)).state is State.PAUSED  # a bad resume changes nothing
    done = await harness.runner.resume(ex.id, {"approved": "true"})
    assert done.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["before", "true/none"]
    with pytest.raises(UserError, match="not PAUSED"):
        await harness.runner.resume(ex.id, {})


async def test_pause_with_a_duration_resumes_by_itself(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: nap
        namespace: t
        tasks:
          - id: wait
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: PT0.1S
          - {id: after, type: test.Record}
        """
    )
    assert ex.state is State.SUCCESS
    wait = runs(ex, "wait")[0]
    assert State.PAUSED in [t.state for t in wait.history]


@pytest.mark.parametrize(
    ("behavior", "pause_state", "ends", "after_ran"),
    [
        ("RESUME", "SUCCESS", State.SUCCESS, True),
        ("WARN", "WARNING", State.WARNING, True),
        ("FAIL", "FAILED", State.FAILED, False),
        ("CANCEL", "CANCELLED", State.CANCELLED, False),
    ],
)
async def test_pause_behavior_when_nobody_resumes_in_time(
    harness: Harness, behavior: str, pause_state: str, ends: State, after_ran: bool
) -> None:
    ex = await harness.run(
        f"""
        id: approval
        namespace: t
        tasks:
          - id: wait
            type: io.kestra.plugin.core.flow.Pause
            delay: PT0.05S
            behavior: {behavior}
          - {{id: after, type: test.Record}}
        """
    )
    assert ex.state is ends
    assert state_of(ex, "wait") == pause_state
    assert (testplugin.CALLS["record"] == [None]) is after_ran
    wait = runs(ex, "wait")[0]
    if behavior == "FAIL":
        assert wait.error == "not resumed within PT0.05S"
    if behavior == "CANCEL":
        assert wait.error == "not resumed within PT0.05S: the execution is cancelled"
        assert not runs(ex, "after")


async def test_a_resume_in_time_ignores_the_behavior(harness: Harness) -> None:
    # The process that started the run waits the pause out; the resume comes meanwhile.
    flow, revision = await harness.deploy(
        """
        id: approval_in_time
        namespace: t
        tasks:
          - {id: wait, type: plait.core.Pause, pauseDuration: PT30S, behavior: FAIL}
          - {id: after, type: test.Record}
        """
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {}))
    paused = await _stored_paused(harness, "approval_in_time")
    await harness.runner.resume(paused.id)
    ex = await asyncio.wait_for(running, 10)
    assert ex.state is State.SUCCESS
    assert state_of(ex, "wait") == "SUCCESS"
    assert testplugin.CALLS["record"] == [None]


async def test_a_resume_from_another_process_takes_the_execution_over(
    harness: Harness, host: Any
) -> None:
    flow, revision = await harness.deploy(
        """
        id: approval_elsewhere
        namespace: t
        tasks:
          - {id: wait, type: plait.core.Pause, pauseDuration: PT30S, behavior: FAIL}
          - {id: after, type: test.Record}
        """
    )
    waiting = asyncio.create_task(harness.runner.run(flow, revision, {}))
    paused = await _stored_paused(harness, "approval_elsewhere")
    other = Runner(harness.repo, host, harness.runner.storage, poll_interval=0.05)
    resumed = await other.resume(paused.id)
    assert resumed.state is State.SUCCESS
    # The first process notices, stops driving, and does not write its stale copy back. What
    # it returns is the stored execution when it noticed: still RUNNING if it looked while
    # the other process was driving (a loaded machine), else SUCCESS; never PAUSED.
    handed = await asyncio.wait_for(waiting, 10)
    assert handed.state in (State.RUNNING, State.SUCCESS)
    stored = await harness.reload(resumed)
    assert stored.state is State.SUCCESS
    assert state_of(stored, "wait") == "SUCCESS"
    assert testplugin.CALLS["record"] == [None]


async def _stored_paused(harness: Harness, flow_id: str) -> Any:
    for _ in range(300):
        listed = await harness.repo.list_executions(flow_id=flow_id)
        if listed and listed[0].state is State.PAUSED:
            return listed[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the execution never paused")


async def test_kill_cancels_running_tasks_and_cascades_to_subflows(harness: Harness) -> None:
    await harness.deploy(
        """
        id: child
        namespace: t.lib
        tasks:
          - {id: hold, type: test.Gate, name: child}
        """
    )
    flow, revision = await harness.deploy(
        """
        id: parent
        namespace: t
        tasks:
          - id: both
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - {id: hold, type: test.Gate, name: parent}
              - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: t.lib, flowId: child}
          - {id: after, type: test.Record}
        """
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {}))
    while not (testplugin.CALLS["gate:child"] and testplugin.CALLS["gate:parent"]):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    parent_id = next(iter(harness.runner._driving))
    await harness.runner.kill(parent_id)
    ex = await asyncio.wait_for(running, 5)
    assert ex.state is State.KILLED
    assert testplugin.CALLS["gate:parent"] == ["started", "cancelled"]
    assert testplugin.CALLS["gate:child"] == ["started", "cancelled"]
    assert runs(ex, "after") == []
    child_id = runs(ex, "sub")[0].outputs["executionId"]
    for _ in range(100):
        child = await harness.repo.get_execution(child_id)
        if child is not None and child.state.terminal:
            break
        await asyncio.sleep(0.02)
    assert child is not None
    assert child.state is State.KILLED
    with pytest.raises(UserError, match="already ended"):
        await harness.runner.kill(parent_id)


async def test_kill_a_paused_execution(harness: Harness) -> None:
    ex = await harness.run(APPROVAL)
    killed = await harness.runner.kill(ex.id)
    assert killed.state is State.KILLED
    assert (await harness.reload(ex)).state is State.KILLED


async def test_restart_reruns_only_the_failed_task_and_keeps_outputs(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: restartable
        namespace: t
        tasks:
          - {id: first, type: test.Record, value: one}
          - {id: shaky, type: test.Flaky, key: shaky, failures: 1}
          - id: last
            type: test.Record
            value: "{{ outputs.first.value }}+{{ outputs.shaky.value }}"
        """
    )
    assert ex.state is State.FAILED
    again = await harness.runner.restart(ex.id)
    assert again.id == ex.id
    assert again.state is State.SUCCESS
    assert again.attempt == 2
    assert testplugin.CALLS["record"] == ["one", "one+2"]  # 'first' ran once
    shaky = runs(again, "shaky")[0]
    assert [a.state for a in shaky.attempts] == [State.FAILED, State.SUCCESS]
    with pytest.raises(UserError, match="FAILED or KILLED"):
        await harness.runner.restart(ex.id)


async def test_replay_from_a_task_run_is_a_new_execution(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: replayable
        namespace: t
        tasks:
          - {id: a, type: test.Record, value: a}
          - {id: b, type: test.Record, value: b}
          - {id: c, type: test.Record, value: "{{ outputs.a.value }}c"}
        """
    )
    assert ex.state is State.SUCCESS
    b = runs(ex, "b")[0]
    replay = await harness.runner.replay(ex.id, b.id)
    assert replay.id != ex.id
    assert replay.original_id == ex.id
    assert replay.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["a", "b", "ac", "b", "ac"]
    assert runs(replay, "a")[0].outputs == {"value": "a"}
    whole = await harness.runner.replay(ex.id)
    assert whole.state is State.SUCCESS
    assert testplugin.CALLS["record"][-3:] == ["a", "b", "ac"]


async def test_replay_from_a_task_run_carries_the_variables_set_before_it(
    harness: Harness,
) -> None:
    ex = await harness.run(
        """
        id: replay_vars
        namespace: t
        variables: {x: zero, keep: k}
        tasks:
          - {id: one, type: io.kestra.plugin.core.execution.SetVariables, variables: {x: one}}
          - {id: a, type: test.Record, value: "{{ vars.x }}{{ vars.keep }}"}
          - {id: two, type: io.kestra.plugin.core.execution.SetVariables, variables: {x: two}}
          - {id: drop, type: io.kestra.plugin.core.execution.UnsetVariables, variables: [keep]}
          - {id: b, type: test.Record, value: "{{ vars.x }}{{ vars.keep ?? '-' }}"}
        """
    )
    assert ex.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["onek", "two-"]
    # From b: one, a, two and drop are copied, not run again; what they did to vars stays.
    from_b = await harness.runner.replay(ex.id, runs(ex, "b")[0].id)
    assert from_b.state is State.SUCCESS
    assert testplugin.CALLS["record"][-1] == "two-"
    assert (await harness.reload(from_b)).variables == {"x": "two"}
    # From a: only 'one' is copied, so a sees x as 'one' left it (and keep not yet unset).
    from_a = await harness.runner.replay(ex.id, runs(ex, "a")[0].id)
    assert from_a.state is State.SUCCESS
    assert testplugin.CALLS["record"][-2:] == ["onek", "two-"]
    # From the start: nothing is copied, the flow's own variables.
    whole = await harness.runner.replay(ex.id)
    assert whole.state is State.SUCCESS
    assert testplugin.CALLS["record"][-2:] == ["onek", "two-"]


@pytest.mark.parametrize(
    ("behavior", "second_state"),
    [("CANCEL", State.CANCELLED), ("FAIL", State.FAILED), ("QUEUE", State.SUCCESS)],
)
async def test_concurrency_limit(harness: Harness, behavior: str, second_state: State) -> None:
    flow, revision = await harness.deploy(
        f"""
        id: limited
        namespace: t
        concurrency:
          limit: 1
          behavior: {behavior}
        tasks:
          - {{id: hold, type: test.Gate, name: limited}}
        """
    )
    first = asyncio.create_task(harness.runner.run(flow, revision, {}))
    while not testplugin.CALLS["gate:limited"]:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    second = asyncio.create_task(harness.runner.run(flow, revision, {}))
    await asyncio.sleep(0.2)
    if behavior == "QUEUE":
        queued = await harness.repo.list_executions(flow_id="limited", states=[State.QUEUED])
        assert len(queued) == 1
        assert not second.done()
    testplugin.GATES["limited"].set()
    one, two = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert one.state is State.SUCCESS
    assert two.state is second_state
    if behavior != "QUEUE":
        assert "concurrency limit of 1" in (two.error or "")


async def test_subflow_outputs_come_back_to_the_parent(harness: Harness) -> None:
    await harness.deploy(
        """
        id: child
        namespace: t.lib
        inputs:
          - {id: x, type: INT}
        tasks:
          - {id: double, type: plait.core.Return, format: "{{ inputs.x * 2 }}"}
        outputs:
          - {id: result, type: INT, value: "{{ outputs.double.value }}"}
        """
    )
    ex = await harness.run(
        """
        id: parent
        namespace: t
        tasks:
          - id: call
            type: io.kestra.plugin.core.flow.Subflow
            namespace: t.lib
            flowId: child
            inputs: {x: 21}
            labels: {origin: parent}
          - id: use
            type: test.Record
            value: "{{ outputs.call.outputs.result }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert testplugin.CALLS["record"] == [42]
    call = runs(ex, "call")[0]
    child = await harness.repo.get_execution(call.outputs["executionId"])
    assert child is not None
    assert child.parent_execution_id == ex.id
    assert child.parent_taskrun_id == call.id
    assert child.labels == {"origin": "parent"}
    assert call.outputs["state"] == "SUCCESS"


async def test_subflow_failure_transmitted_or_not(harness: Harness) -> None:
    await harness.deploy(
        """
        id: broken
        namespace: t.lib
        tasks:
          - {id: f, type: plait.core.Fail, errorMessage: child broke}
        """
    )
    source = """
        id: parent
        namespace: t
        tasks:
          - id: call
            type: io.kestra.plugin.core.flow.Subflow
            namespace: t.lib
            flowId: broken
            transmitFailed: {transmit}
          - {{id: after, type: test.Record}}
        """
    failed = await harness.run(source.format(transmit="true"))
    assert failed.state is State.FAILED
    assert runs(failed, "after") == []
    tolerated = await harness.run(source.format(transmit="false"))
    assert tolerated.state is State.SUCCESS
    assert runs(tolerated, "call")[0].outputs["state"] == "FAILED"


async def test_subflow_that_does_not_exist_fails_the_task(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: parent
        namespace: t
        tasks:
          - {id: call, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: ghost}
        """
    )
    assert ex.state is State.FAILED
    assert "ghost" in (runs(ex, "call")[0].error or "")


async def test_a_kill_requested_elsewhere_stops_a_busy_execution(harness: Harness) -> None:
    flow, revision = await harness.deploy(
        """
        id: busy
        namespace: t
        tasks:
          - id: loop
            type: plait.core.ForEach
            values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
            tasks:
              - {id: nap, type: plait.core.Sleep, duration: PT0.03S}
        """
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {}))
    await asyncio.sleep(0.15)
    (execution,) = await harness.repo.list_executions(flow_id="busy")
    assert await harness.repo.request_kill(execution.id)  # as another process would
    ex = await asyncio.wait_for(running, 5)
    assert ex.state is State.KILLED
    assert len(runs(ex, "nap")) < 20


async def test_restart_after_a_kill_is_not_killed_again(harness: Harness) -> None:
    flow, revision = await harness.deploy(
        """
        id: killed_then_restarted
        namespace: t
        tasks:
          - {id: hold, type: test.Gate, name: k}
          - {id: after, type: test.Record}
        """
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {}))
    while not testplugin.CALLS["gate:k"]:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    (execution,) = await harness.repo.list_executions(flow_id="killed_then_restarted")
    await harness.repo.request_kill(execution.id)
    assert (await asyncio.wait_for(running, 5)).state is State.KILLED
    testplugin.GATES["k"].set()
    again = await harness.runner.restart(execution.id)
    assert again.state is State.SUCCESS
    assert testplugin.CALLS["record"] == [None]


async def test_a_subflow_that_pauses_keeps_its_parent_waiting(harness: Harness) -> None:
    await harness.deploy(
        """
        id: approve
        namespace: t.lib
        tasks:
          - id: wait
            type: plait.core.Pause
            onResume:
              - {id: ok, type: BOOLEAN}
        outputs:
          - {id: decision, type: BOOLEAN, value: "{{ outputs.wait.onResume.ok }}"}
        """
    )
    parent = await harness.run(
        """
        id: parent
        namespace: t
        tasks:
          - {id: call, type: plait.core.Subflow, namespace: t.lib, flowId: approve}
          - id: after
            type: test.Record
            value: "{{ outputs.call.outputs.decision }}"
        """
    )
    assert parent.state is State.PAUSED
    assert state_of(parent, "call") == "PAUSED"
    assert runs(parent, "after") == []
    child_id = runs(parent, "call")[0].scratch["child"]
    with pytest.raises(UserError, match="resume that one"):
        await harness.runner.resume(parent.id, {})
    child = await harness.runner.resume(child_id, {"ok": "true"})
    assert child.state is State.SUCCESS
    finished = await harness.reload(parent)
    assert finished.state is State.SUCCESS, finished.error
    assert testplugin.CALLS["record"] == [True]


async def test_an_internal_error_following_a_subflow_fails_the_task_not_hangs(
    harness: Harness,
) -> None:
    await harness.deploy(
        """
        id: child
        namespace: t.lib
        tasks:
          - {id: work, type: test.Record}
        """
    )
    real_drive = harness.runner.drive

    async def broken_drive(flow: Any, execution: Any) -> Any:
        if execution.flow_id == "child":
            raise RuntimeError("the child's driver broke")
        return await real_drive(flow, execution)

    harness.runner.drive = broken_drive  # type: ignore[method-assign]
    flow, revision = await harness.deploy(
        """
        id: parent
        namespace: t
        tasks:
          - {id: call, type: plait.core.Subflow, namespace: t.lib, flowId: child}
        """
    )
    ex = await asyncio.wait_for(real_drive(flow, await harness.runner.create(flow, revision)), 10)
    assert ex.state is State.FAILED
    assert runs(ex, "call")[0].error == "subflow: RuntimeError: the child's driver broke"


HOLDS = """
id: pausable
namespace: t
tasks:
  - id: hold
    type: test.Gate
    name: pause
  - id: a
    type: test.Record
    value: a
  - id: b
    type: test.Record
    value: b
"""


async def _gate_started(name: str) -> None:
    for _ in range(400):
        if testplugin.CALLS[f"gate:{name}"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gate {name} never started")


async def test_manual_pause_lets_running_tasks_finish_then_resume(harness: Harness) -> None:
    flow, revision = await harness.deploy(HOLDS)
    execution = await harness.runner.create(flow, revision, {})
    driving = asyncio.create_task(harness.runner.drive(flow, execution))
    await _gate_started("pause")
    asked = await harness.runner.pause(execution.id)
    assert asked.pause_requested
    assert (await harness.reload(execution)).pause_requested  # stored before it is honoured
    testplugin.GATES["pause"].set()
    paused = await driving
    assert paused.state is State.PAUSED
    assert state_of(paused, "hold") == "SUCCESS"  # the running task finished, not cancelled
    assert testplugin.CALLS["record"] == []  # nothing new started
    stored = await harness.reload(execution)
    assert stored.state is State.PAUSED
    assert stored.pause_requested
    with pytest.raises(UserError, match="PAUSED"):
        await harness.runner.pause(execution.id)
    with pytest.raises(UserError, match="approved"):
        await harness.runner.resume(execution.id, {"approved": "yes"})  # no onResume inputs
    done = await harness.runner.resume(execution.id)
    assert done.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["a", "b"]
    assert not (await harness.reload(execution)).pause_requested
    with pytest.raises(UserError, match="only a running execution"):
        await harness.runner.pause(execution.id)


async def test_pause_requested_by_another_process_and_resumed_there(harness: Harness) -> None:
    """The request is stored by one runner (another process: its own owner id) and honoured
    by the one driving the execution; the other then resumes and drives it."""
    flow, revision = await harness.deploy(HOLDS)
    execution = await harness.runner.create(flow, revision, {})
    driving = asyncio.create_task(harness.runner.drive(flow, execution))
    await _gate_started("pause")
    other = Runner(
        harness.repo,
        harness.runner.host,
        harness.runner.storage,
        key_ring=harness.runner.key_ring,
        poll_interval=0.05,
        owner="another-process",
    )
    try:
        await other.pause(execution.id)
        for _ in range(500):  # the driver reads stored requests once per poll interval
            if execution.pause_requested:  # the object it drives
                break
            await asyncio.sleep(0.01)
        assert execution.pause_requested
        testplugin.GATES["pause"].set()
        paused = await driving
        assert paused.state is State.PAUSED
        assert testplugin.CALLS["record"] == []
        done = await other.resume(execution.id)
        assert done.state is State.SUCCESS
        assert testplugin.CALLS["record"] == ["a", "b"]
    finally:
        await other.close()


async def test_a_manually_paused_execution_can_be_killed(harness: Harness) -> None:
    flow, revision = await harness.deploy(HOLDS)
    execution = await harness.runner.create(flow, revision, {})
    driving = asyncio.create_task(harness.runner.drive(flow, execution))
    await _gate_started("pause")
    await harness.runner.pause(execution.id)
    testplugin.GATES["pause"].set()
    assert (await driving).state is State.PAUSED
    killed = await harness.runner.kill(execution.id)
    assert killed.state is State.KILLED
    assert testplugin.CALLS["record"] == []
