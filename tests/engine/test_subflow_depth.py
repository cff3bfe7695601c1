"""A flow that calls itself, directly or not, stops at ``subflow_max_depth`` with nothing left
running; a direct self-call is refused by validation (tests/flows/invalid/subflow_self_*)."""

from __future__ import annotations

import pytest
from plait.flows import State
from plait.limits import override_limits
from plait.records import Execution
from plait_sdk import ValidationError

from .conftest import Harness, runs

# Counts down: calls itself (through a templated id, which validation cannot see) while n > 0.
COUNTDOWN = """
id: countdown
namespace: t
inputs:
  - {id: n, type: INT}
tasks:
  - id: more
    type: plait.core.If
    condition: "{{ inputs.n > 0 }}"
    then:
      - id: again
        type: plait.core.Subflow
        namespace: "{{ flow.namespace }}"
        flowId: "{{ flow.id }}"
        inputs: {n: "{{ inputs.n - 1 }}"}
"""


async def all_executions(harness: Harness) -> list[Execution]:
    return await harness.repo.list_executions(limit=1000)


async def test_a_chain_as_deep_as_the_limit_runs(harness: Harness) -> None:
    with override_limits(subflow_max_depth=3):
        ex = await harness.run(COUNTDOWN, {"n": 3})
    assert ex.state is State.SUCCESS, ex.error
    everything = await all_executions(harness)
    assert sorted(e.subflow_depth for e in everything) == [0, 1, 2, 3]
    assert {e.state for e in everything} == {State.SUCCESS}


async def test_one_level_more_fails_the_subflow_task_that_would_go_past_it(
    harness: Harness,
) -> None:
    with override_limits(subflow_max_depth=3):
        ex = await harness.run(COUNTDOWN, {"n": 4})
    assert ex.state is State.FAILED
    everything = await all_executions(harness)
    # The root and three nested executions; the fourth is never created.
    assert sorted(e.subflow_depth for e in everything) == [0, 1, 2, 3]
    assert {e.state for e in everything} == {State.FAILED}  # nothing left RUNNING
    deepest = next(e for e in everything if e.subflow_depth == 3)
    deepest = await harness.reload(deepest)
    (again,) = runs(deepest, "again")
    assert again.state is State.FAILED
    assert again.error == (
        "subflow: not started: t.countdown would be nested 4 subflow executions deep "
        "(limit subflow_max_depth is 3, set with PLAIT_LIMIT_SUBFLOW_MAX_DEPTH)"
    )
    logs = await harness.repo.logs(deepest.id)
    assert any("would be nested 4 subflow executions deep" in r.message for r in logs)


async def test_indirect_recursion_stops_at_the_default_limit(harness: Harness) -> None:
    await harness.deploy(
        """
        id: b
        namespace: t
        tasks:
          - {id: call_a, type: plait.core.Subflow, namespace: t, flowId: a}
        """
    )
    ex = await harness.run(
        """
        id: a
        namespace: t
        tasks:
          - {id: call_b, type: plait.core.Subflow, namespace: t, flowId: b}
        """
    )
    assert ex.state is State.FAILED
    everything = await all_executions(harness)
    assert len(everything) == 26  # the root and 25 nested: a, b, a, b...
    assert {e.state for e in everything} == {State.FAILED}
    assert await harness.repo.unfinished_executions() == []


async def test_a_for_each_item_calling_its_own_flow_stops_too(harness: Harness) -> None:
    with override_limits(subflow_max_depth=2):
        ex = await harness.run(
            """
            id: fan
            namespace: t
            inputs:
              - {id: batch, type: STRING, required: false}
            tasks:
              - {id: items, type: plait.core.storage.Write, content: "x\\ny\\n"}
              - id: each
                type: plait.core.ForEachItem
                items: "{{ outputs.items.uri }}"
                namespace: t
                flowId: "{{ 'fan' }}"
                inputs: {batch: "{{ taskrun.items }}"}
            """
        )
    assert ex.state is State.FAILED
    everything = await all_executions(harness)
    # Two batches per level: 1 + 2 + 4 executions, the last four failing to go deeper.
    assert sorted(e.subflow_depth for e in everything) == [0, 1, 1, 2, 2, 2, 2]
    assert {e.state for e in everything} == {State.FAILED}


async def test_a_direct_self_call_cannot_be_deployed(harness: Harness) -> None:
    with pytest.raises(ValidationError, match="recursive call"):
        await harness.deploy(
            """
            id: self
            namespace: t
            tasks:
              - {id: again, type: plait.core.Subflow, namespace: t, flowId: self}
            """
        )
