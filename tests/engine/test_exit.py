"""The Exit task: end the execution now, in a chosen state (Kestra's core.execution.Exit)."""

from __future__ import annotations

import asyncio

import pytest
from plait.flows import State

from . import testplugin
from .conftest import Harness, runs, state_of

FLOW = """
id: exits
namespace: t
inputs:
  - {id: state, type: STRING}
tasks:
  - id: both
    type: plait.core.Parallel
    tasks:
      - {id: busy, type: test.Gate, name: busy}
      - id: branch
        type: plait.core.Sequential
        tasks:
          - {id: stop, type: io.kestra.plugin.core.execution.Exit, state: "{{ inputs.state }}"}
          - {id: not_reached, type: test.Record, value: not_reached}
  - {id: next, type: test.Record, value: next}
errors:
  - {id: handler, type: test.Record, value: errors}
finally:
  - {id: cleanup, type: test.Record, value: finally}
afterExecution:
  - {id: notify, type: test.Record, value: "after {{ execution.state }}"}
"""


@pytest.mark.parametrize(
    ("given", "ends"),
    [
        ("SUCCESS", State.SUCCESS),
        ("WARNING", State.WARNING),
        ("FAILED", State.FAILED),
        ("CANCELED", State.CANCELLED),
    ],
)
async def test_exit_ends_the_execution_after_what_is_running(
    harness: Harness, given: str, ends: State
) -> None:
    flow, revision = await harness.deploy(FLOW)
    running = asyncio.create_task(harness.runner.run(flow, revision, {"state": given}))
    for _ in range(300):
        if testplugin.CALLS["gate:busy"]:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    # The Exit ran, but the task running in the other branch is left to finish.
    assert not running.done()
    testplugin.GATES["busy"].set()
    ex = await asyncio.wait_for(running, 10)
    assert ex.state is ends
    assert state_of(ex, "busy") == "SUCCESS"
    assert testplugin.CALLS["gate:busy"] == ["started"]
    # Nothing of tasks, errors or finally starts after an Exit; afterExecution still runs.
    assert testplugin.CALLS["record"] == [f"after {ends.value}"]
    assert not runs(ex, "not_reached")
    assert not runs(ex, "next")
    assert state_of(ex, "stop") == ends.value
    assert state_of(ex, "branch") == ends.value
    assert state_of(ex, "both") == ends.value
    if ends.failed:
        assert ex.error == f"task 'stop' failed: Exit: the execution ends {ends.value}"
    else:
        assert ex.error is None


async def test_exit_killed_kills_what_is_running(harness: Harness) -> None:
    ex = await asyncio.wait_for(harness.run(FLOW, {"state": "KILLED"}), 10)
    assert ex.state is State.KILLED
    assert ex.error == "killed by the Exit task 'stop'"
    assert state_of(ex, "busy") == "KILLED"
    assert testplugin.CALLS["gate:busy"] == ["started", "cancelled"]
    assert testplugin.CALLS["record"] == []


async def test_unfinished_task_runs_end_killed_and_restart_exits_again(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: loop_exit
        namespace: t
        tasks:
          - id: each
            type: plait.core.ForEach
            values: [1, 2, 3]
            concurrencyLimit: 1
            tasks:
              - id: stop
                type: plait.core.Exit
                state: "{{ taskrun.value == 2 and 'FAILED' or 'SUCCESS' }}"
        """
    )
    # value 1 ran its Exit SUCCESS first: the execution ends SUCCESS and the loop's other
    # iterations never start.
    assert ex.state is State.SUCCESS
    assert [r.value for r in runs(ex, "stop")] == [1]
    failed = await harness.run(
        "id: f\nnamespace: t\ntasks:\n  - {id: stop, type: plait.core.Exit, state: FAILED}\n"
    )
    restarted = await harness.runner.restart(failed.id)
    assert restarted.state is State.FAILED
    assert len(runs(restarted, "stop")[0].attempts) == 2
    assert restarted.attempt == 2


async def test_an_exit_in_a_subflow_ends_only_the_child(harness: Harness) -> None:
    await harness.deploy(
        """
        id: child
        namespace: t
        tasks:
          - {id: stop, type: plait.core.Exit, state: WARNING}
          - {id: never, type: test.Record, value: never}
        """
    )
    parent = await harness.run(
        """
        id: parent
        namespace: t
        tasks:
          - {id: call, type: plait.core.Subflow, namespace: t, flowId: child}
          - {id: after, type: test.Record, value: parent goes on}
        """
    )
    assert parent.state is State.WARNING
    assert state_of(parent, "call") == "WARNING"
    assert testplugin.CALLS["record"] == ["parent goes on"]
