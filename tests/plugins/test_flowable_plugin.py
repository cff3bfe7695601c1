"""A flowable and a label-setting task from a plugin outside the core (tests/plugins/dists/
weighted, built on the SDK alone) in real runs of the Runner. The fresh-venv test
(test_install.py) installs the same plugin as a wheel and runs it with the `plait` command."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import Origin, PluginHost, TypeInfo
from plait.records import Execution
from plait.storage import SqlRepository
from plait_sdk import FlowScope

SOURCE = Path(__file__).parent / "dists" / "weighted" / "src" / "plait_weighted" / "__init__.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plait_weighted", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plait_weighted"] = module  # pydantic resolves the models' annotations there
    spec.loader.exec_module(module)
    return module


PLUGIN = _load()

FLOW = """\
id: draw
namespace: demo
tasks:
  - id: pick
    type: weighted.Branch
    seed: "{{ inputs.seed }}"
    branches:
      - weight: 1
        tasks:
          - {id: heads, type: weighted.Tag, labels: {side: heads}}
      - weight: 3
        tasks:
          - {id: tails, type: weighted.Tag, labels: {side: tails}}
          - {id: again, type: plait.core.Return, format: "{{ outputs.tails.labels.side }}"}
  - id: after
    type: plait.core.Return
    format: "branch {{ outputs.pick.branch }}"
inputs:
  - {id: seed, type: STRING}
"""


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[Runner]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    host = PluginHost.discover(extra=[PLUGIN])
    try:
        yield Runner(repo, host, LocalStorageBackend(tmp_path / "storage"), poll_interval=0.05)
    finally:
        await repo.close()


async def _run(runner: Runner, seed: str, source: str = FLOW) -> Execution:
    flow, revision = await runner.deploy(textwrap.dedent(source), file="flow.yaml")
    return await runner.run(flow, revision, {"seed": seed})


def _states(execution: Execution) -> dict[str, str]:
    return {r.task_id: r.state.value for r in execution.task_runs}


def _seed_for(branch: int) -> str:
    """A seed whose draw picks ``branch`` (found with the plugin's own draw)."""
    model = PLUGIN.Branch.model_validate(
        {
            "branches": [
                {"weight": 1, "tasks": [{"id": "a", "type": "x"}]},
                {"weight": 3, "tasks": [{"id": "b", "type": "x"}]},
            ]
        }
    )
    return next(s for s in map(str, range(100)) if model.pick(s) == branch)


async def test_the_plugin_flowable_runs_the_branch_its_seed_picks(runner: Runner) -> None:
    seed = _seed_for(1)
    execution = await _run(runner, seed)
    assert execution.state is State.SUCCESS, execution.error
    assert _states(execution) == {
        "pick": "SUCCESS",
        "heads": "SKIPPED",
        "tails": "SUCCESS",
        "again": "SUCCESS",
        "after": "SUCCESS",
    }
    # The label-setting task of the plugin changed the execution's labels.
    assert execution.labels["side"] == "tails"
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["pick"] == {"branch": 1}
    assert outputs["again"] == {"value": "tails"}
    assert outputs["after"] == {"value": "branch 1"}
    stored = await runner.repo.get_execution(execution.id)
    assert stored is not None
    assert stored.labels["side"] == "tails"


async def test_the_same_seed_always_picks_the_same_branch(runner: Runner) -> None:
    seed = _seed_for(0)
    picked: list[Any] = []
    for _ in range(2):
        execution = await _run(runner, seed)
        assert execution.state is State.SUCCESS, execution.error
        picked.append((_states(execution)["heads"], execution.labels["side"]))
    assert picked == [("SUCCESS", "heads"), ("SUCCESS", "heads")]


async def test_a_failing_branch_fails_the_plugin_flowable(runner: Runner) -> None:
    source = """\
    id: draw
    namespace: demo
    inputs:
      - {id: seed, type: STRING}
    tasks:
      - id: pick
        type: weighted.Branch
        seed: "{{ inputs.seed }}"
        branches:
          - weight: 1
            tasks:
              - {id: boom, type: plait.core.Fail, errorMessage: no luck}
    """
    execution = await _run(runner, "1", source)
    assert execution.state is State.FAILED
    pick = next(r for r in execution.task_runs if r.task_id == "pick")
    assert pick.state is State.FAILED
    assert pick.error == "branch 0 failed"
    assert "side" not in execution.labels


async def test_the_plugin_flowable_children_are_validated_like_any_task(runner: Runner) -> None:
    source = """\
    id: draw
    namespace: demo
    tasks:
      - id: pick
        type: weighted.Branch
        branches:
          - weight: 1
            tasks:
              - {id: nope, type: plait.core.Nope}
    """
    with pytest.raises(Exception, match=r"unknown task type 'plait.core.Nope'"):
        await runner.deploy(textwrap.dedent(source), file="flow.yaml")


class _Broken(PLUGIN.Branch):  # type: ignore[misc,name-defined]
    type_name: ClassVar[str] = "weighted.Broken"

    async def decide(self, scope: FlowScope) -> None:
        raise KeyError("oops")


async def test_a_flowable_that_breaks_fails_its_run_not_the_engine(tmp_path: Path) -> None:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    host = PluginHost.discover(extra=[PLUGIN])
    host.registry.add(TypeInfo("weighted.Broken", _Broken, "task", Origin("tests", "tests", "0")))
    try:
        runner = Runner(repo, host, LocalStorageBackend(tmp_path / "storage"), poll_interval=0.05)
        source = FLOW.replace("type: weighted.Branch", "type: weighted.Broken")
        execution = await _run(runner, "1", source)
    finally:
        await repo.close()
    assert execution.state is State.FAILED
    broken = next(r for r in execution.task_runs if r.task_id == "pick")
    assert broken.error == "task 'pick': KeyError: 'oops'"
