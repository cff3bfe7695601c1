"""The engine knows flowables and task effects only through the SDK's contract: it imports
nothing of the core's own plugin (plait.builtin), whose tasks are a plugin like any other."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from plait_sdk import FlowableTask

CHECK = """\
import sys
import plait.engine._executor, plait.engine._runner
print(sorted(m for m in sys.modules if m.startswith("plait.builtin")))
"""


def test_the_engine_imports_nothing_of_the_builtin_plugin() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_the_core_flowables_are_sdk_flowables_with_their_own_decide() -> None:
    from plait.builtin.flowable import FLOWABLE_TASKS

    for cls in FLOWABLE_TASKS:
        assert issubclass(cls, FlowableTask), cls
        assert cls.decide is not FlowableTask.decide, f"{cls.__name__} does not decide"


async def test_a_running_loop_shows_its_outputs_again_to_a_new_executor() -> None:
    # After a restart the execution is driven by a new executor: the loop's children still
    # read outputs.<loop>.iterationCount.
    from plait.engine._executor import Executor
    from plait.flows import State, load_flow
    from plait.plugins import PluginHost
    from plait.records import Execution

    host = PluginHost.discover(entry_points=False)
    flow = load_flow(
        """\
id: x
namespace: t
tasks:
  - id: loop
    type: plait.core.LoopUntil
    condition: false
    checkFrequency: {interval: PT1H}
    tasks:
      - {id: count, type: plait.core.Return, format: "{{ outputs.loop.iterationCount }}"}
""",
        registry=host.registry,
    )
    execution = Execution(namespace="t", flow_id="x", flow_revision=1)

    async def render(context: dict[str, object], value: object) -> object:
        return value

    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = Executor(flow, execution, render=render)
    step = await first.step(now)
    (count,) = step.start
    first.complete(count.id, now=now, outputs={"value": "1"})
    await first.step(now)
    loop = next(r for r in execution.task_runs if r.task_id == "loop")
    assert loop.state is State.RUNNING
    assert loop.outputs == {"iterationCount": 1}
    again = Executor(flow, execution, render=render)
    assert again.outputs["loop"] == {"iterationCount": 1}
