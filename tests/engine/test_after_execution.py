"""afterExecution: tasks run once the execution's state is decided, which they cannot change."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from plait.engine._runner import Runner
from plait.flows import State, load_flow
from plait.plugins import PluginHost
from plait_sdk import ValidationError

from . import testplugin
from .conftest import Harness, runs, state_of

FLOW = """
id: after
namespace: t
inputs:
  - {id: fail, type: BOOLEAN}
tasks:
  - {id: work, type: plait.core.Fail, condition: "{{ inputs.fail }}", errorMessage: boom}
errors:
  - {id: handle, type: test.Record, key: seen, value: "errors: {{ execution.state }}"}
finally:
  - {id: tidy, type: test.Record, key: seen, value: "finally: {{ execution.state }}"}
afterExecution:
  - id: on_failure
    type: test.Record
    key: seen
    runIf: "{{ execution.state == 'FAILED' }}"
    value: "after: {{ execution.state }}"
  - id: on_success
    type: test.Record
    key: seen
    runIf: "{{ execution.state == 'SUCCESS' }}"
    value: "after: {{ execution.state }}"
  - {id: alert_broken, type: plait.core.Fail, errorMessage: the alert could not be sent}
  - {id: never, type: test.Record, key: seen, value: never}
"""


async def test_after_execution_sees_the_decided_state_and_cannot_change_it(
    harness: Harness,
) -> None:
    ex = await harness.run(FLOW, {"fail": False})
    # A failing afterExecution task leaves a successful execution SUCCESS.
    assert ex.state is State.SUCCESS
    assert testplugin.CALLS["seen"] == ["finally: RUNNING", "after: SUCCESS"]
    assert state_of(ex, "on_failure") == "SKIPPED"
    assert state_of(ex, "alert_broken") == "FAILED"
    assert not runs(ex, "never")  # the block is sequential: it stops at its first failure
    assert ex.error is None
    assert [t.state for t in ex.history][-2:] == [State.RUNNING, State.SUCCESS]
    testplugin.reset()
    ex = await harness.run(FLOW, {"fail": True})
    assert ex.state is State.FAILED
    assert ex.error == "task 'work' failed: boom"
    assert testplugin.CALLS["seen"] == ["errors: RUNNING", "finally: RUNNING", "after: FAILED"]


async def test_after_execution_runs_after_recovery(harness: Harness, host: PluginHost) -> None:
    flow, revision = await harness.deploy(
        """
        id: recovered
        namespace: t
        tasks:
          - {id: work, type: test.Record, key: seen, value: work}
        afterExecution:
          - {id: slow, type: test.Gate, name: after}
          - {id: notify, type: test.Record, key: seen, value: "after: {{ execution.state }}"}
        """
    )
    running = asyncio.create_task(harness.runner.run(flow, revision, {}))
    for _ in range(200):
        if testplugin.CALLS["gate:after"]:
            break
        await asyncio.sleep(0.01)
    running.cancel()  # the process "dies" while an afterExecution task runs
    with contextlib.suppress(asyncio.CancelledError):
        await running
    (stored,) = await harness.repo.list_executions(flow_id="recovered")
    assert stored.state is State.RUNNING  # not ended before its afterExecution tasks ran
    testplugin.GATES["after"].set()
    other = Runner(harness.repo, host, harness.runner.storage, poll_interval=0.05)
    (ex,) = await other.recover_all()
    assert ex.state is State.SUCCESS
    assert testplugin.CALLS["seen"] == ["work", "after: SUCCESS"]
    assert testplugin.CALLS["gate:after"] == ["started", "cancelled", "started"]


async def test_after_execution_task_ids_are_checked_with_the_others(harness: Harness) -> None:
    with pytest.raises(ValidationError, match=r"afterExecution\[0\]\.id: duplicate task id 'a'"):
        load_flow(
            "id: x\nnamespace: t\ntasks:\n  - {id: a, type: plait.core.Log, message: hi}\n"
            "afterExecution:\n  - {id: a, type: plait.core.Log, message: again}\n",
            registry=harness.runner.host.registry,
            file="x.yaml",
        )
