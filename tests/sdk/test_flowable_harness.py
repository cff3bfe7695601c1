"""plait_sdk.testing.FlowableHarness: a flowable's decisions stepped one by one, on SDK types
only (the weighted test plugin's Branch, and a small flowable written here)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from plait_sdk import FlowableTask, FlowScope, SetLabels, State, TaskList
from plait_sdk.testing import FakeClock, FlowableHarness, TaskHarness

SOURCE = (
    Path(__file__).parents[1] / "plugins" / "dists" / "weighted" / "src" / "plait_weighted"
) / "__init__.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plait_weighted", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plait_weighted"] = module
    spec.loader.exec_module(module)
    return module


WEIGHTED = _load()


class Both(FlowableTask):
    """Run ``first`` then ``second``; after a failure, ``errors``."""

    type_name: ClassVar[str] = "acme.Both"
    first: TaskList
    second: TaskList
    errors: TaskList = []
    retry_after: timedelta | None = None

    async def decide(self, scope: FlowScope) -> None:
        state = await scope.run_tasks([*self.first, *self.second])
        if state is State.FAILED and self.retry_after is not None and "waited" not in scope.memory:
            scope.remember("waited", True)
            scope.wake_at(scope.now + self.retry_after)
            return
        scope.finish(await scope.handle(state, self.errors, []))


def _task(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "type": "acme.Any"}


async def test_children_start_one_after_the_other_and_the_flowable_finishes() -> None:
    harness = FlowableHarness(Both, {"first": [_task("a")], "second": [_task("b")]})
    step = await harness.step()
    assert step.started == ["a"]
    assert step.state is None
    assert (await harness.step()).started == []  # a still runs
    harness.succeed("a", {"value": 1})
    step = await harness.step()
    assert step.started == ["b"]
    harness.set_state("b", "WARNING")
    step = await harness.step()
    assert step.state is State.WARNING
    assert step.finished


async def test_a_failure_runs_the_errors_then_fails() -> None:
    harness = FlowableHarness(
        Both, {"first": [_task("a")], "second": [_task("b")], "errors": [_task("alert")]}
    )
    await harness.step()
    harness.fail("a", "boom")
    step = await harness.step()
    assert step.started == ["alert"]
    assert step.state is None
    harness.succeed("alert")
    step = await harness.step()
    assert step.failed
    assert step.state is State.FAILED
    with pytest.raises(AssertionError, match="no run of child task 'b'"):
        harness.run_of("b")


async def test_a_timer_is_seen_with_the_fake_clock() -> None:
    clock = FakeClock()
    harness = FlowableHarness(
        Both, {"first": [_task("a")], "second": [_task("b")], "retryAfter": "PT5M"}, clock=clock
    )
    await harness.step()
    harness.fail("a")
    step = await harness.step()
    assert step.wake_at == clock.now() + timedelta(minutes=5)
    assert step.state is None


async def test_the_plugin_branch_skips_the_branches_it_did_not_pick() -> None:
    properties = {
        "seed": "{{ inputs.seed }}",
        "branches": [
            {"weight": 1, "tasks": [_task("heads")]},
            {"weight": 3, "tasks": [_task("tails"), _task("again")]},
        ],
    }
    model = WEIGHTED.Branch.model_validate(properties)
    seed = next(s for s in map(str, range(100)) if model.pick(s) == 1)
    harness = FlowableHarness(WEIGHTED.Branch, properties, inputs={"seed": seed})
    step = await harness.step()
    assert step.skipped == ["heads"]
    assert step.started == ["tails"]
    assert harness.outputs == {"branch": 1}
    harness.succeed("tails")
    assert (await harness.step()).started == ["again"]
    harness.fail("again")
    step = await harness.step()
    assert step.state is State.FAILED
    assert step.reason == "branch 1 failed"


async def test_the_plugin_label_task_asks_for_labels_in_the_task_harness() -> None:
    result = await TaskHarness(inputs={"who": "ada"}).run(
        WEIGHTED.Tag, {"labels": {"owner": "{{ inputs.who }}", "tier": 2}}
    )
    assert result.effects == [SetLabels({"owner": "ada", "tier": "2"})]
    assert result.outputs == {"labels": {"owner": "ada", "tier": "2"}}
