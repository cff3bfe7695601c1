"""`from plait_script import Plait`: the helper Python tasks put on `PYTHONPATH`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from plait_scripts import PythonCommands, PythonScript
from plait_scripts.python import HELPER_DIR
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from .conftest import Harness

SCRIPT = """\
import datetime, decimal, time
from plait_script import Plait

print("working")
Plait.outputs({"rows": 3, "when": datetime.date(2024, 6, 1), "price": decimal.Decimal("1.5")})
Plait.outputs({"status": "ok", "tags": ("a", "b")})
Plait.counter("rows", 3, {"table": "orders", "shard": 2})
Plait.gauge("queue", 7.5)
Plait.timer("load", 1.25)
Plait.timer("delta", datetime.timedelta(milliseconds=500))
result = Plait.timer("call", lambda: time.sleep(0.05) or "done")
Plait.outputs({"result": result})
Plait.log("look at this", "warning")
Plait.log("a detail", level="debug")
"""


async def test_outputs_metrics_and_logs_from_the_helper(ctx: HarnessContext) -> None:
    out = await PythonScript(script=SCRIPT).run(ctx)
    assert out.vars == {
        "rows": 3,
        "when": "2024-06-01",
        "price": 1.5,
        "status": "ok",
        "tags": ["a", "b"],
        "result": "done",
    }
    by_name = {name: (value, kind, tags) for name, value, kind, tags in ctx.metrics}
    assert by_name["rows"] == (3.0, "counter", {"table": "orders", "shard": "2"})
    assert by_name["queue"] == (7.5, "gauge", {})
    assert by_name["load"] == (1.25, "timer", {})
    assert by_name["delta"] == (0.5, "timer", {})
    called, kind, _ = by_name["call"]
    assert kind == "timer"
    assert 0.04 <= called < 5
    # Protocol lines are read, not logged.
    assert ctx.messages("INFO") == ["working"]
    assert ctx.messages("WARNING") == ["look at this"]
    assert ctx.messages("DEBUG") == ["a detail"]


async def test_the_helper_in_commands_keeps_the_tasks_own_pythonpath(
    ctx: HarnessContext, tmp_path: Path
) -> None:
    extra = tmp_path / "lib"
    extra.mkdir()
    (extra / "mylib.py").write_text("NAME = 'mine'\n")
    task = PythonCommands.model_validate(
        {
            "env": {"PYTHONPATH": str(extra)},
            "inputFiles": {
                "main.py": (
                    "import sys, mylib\n"
                    "from plait_script import Plait\n"
                    "Plait.outputs({'lib': mylib.NAME, 'arg': sys.argv[1]})\n"
                )
            },
            "commands": ["python3 main.py first"],
        }
    )
    out = await task.run(ctx)
    assert out.vars == {"lib": "mine", "arg": "first"}


async def test_a_bad_metric_value_fails_the_script(ctx: HarnessContext) -> None:
    task = PythonScript(script="from plait_script import Plait\nPlait.counter('rows', 'many')")
    with pytest.raises(TaskFailure, match="TypeError: the value of metric 'rows' must be a number"):
        await task.run(ctx)
    assert ctx.metrics == []


async def test_helper_outputs_reach_the_flow_outputs(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: helper
        namespace: test.scripts
        tasks:
          - id: count
            type: io.kestra.plugin.scripts.python.Script
            script: |
              from plait_script import Plait
              rows = [1, 2, 3, 4]
              Plait.outputs({"rows": len(rows)})
              Plait.counter("rows", len(rows))
        outputs:
          - id: rows
            type: INT
            value: "{{ outputs.count.vars.rows }}"
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    assert ex.outputs == {"rows": 4}
    (run,) = ex.task_runs
    assert run.outputs["stdOutLineCount"] == 2
    metrics = await harness.repo.metrics(ex.id)
    assert [(m.task_id, m.name, m.value) for m in metrics] == [("count", "rows", 4.0)]


def test_the_helper_module_is_standalone_and_prints_one_line_per_call() -> None:
    # Run by an interpreter that has nothing of Plait: only the helper's directory on the path.
    code = "from plait_script import Plait\nPlait.outputs({'a': 'x\\ny'})\nPlait.counter('c', 1)"
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(HELPER_DIR)!r})\n{code}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == [
        '::{"outputs":{"a":"x\\ny"}}::',
        '::{"metrics":[{"name":"c","type":"counter","value":1}]}::',
    ]
