"""Kestra's older forms: they run (with a warning naming the new form), and `plait flows upgrade`
rewrites them keeping the file's comments and layout."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from plait.cli import cli
from plait_sdk import Model
from plait_sdk._models import java_duration

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture
def plait(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(
            cli, [*args], catch_exceptions=False, env={"PLAIT_HOME": str(tmp_path / "home")}
        )

    return invoke


def test_the_older_pause_runs_its_tasks_once_resumed(plait) -> None:  # type: ignore[no-untyped-def]
    result = plait("run", str(FLOWS / "human_in_the_loop_legacy.yaml"), "--json")
    paused = json.loads(result.stdout)
    assert paused["state"] == "PAUSED"
    result = plait("executions", "resume", paused["id"], "--json")
    done = json.loads(result.stdout)
    assert done["state"] == "SUCCESS", done["error"]
    runs = {run["taskId"]: run for run in done["taskRuns"]}
    assert runs["run_post_approval"]["state"] == "SUCCESS"
    assert runs["post_resume"]["outputs"]["value"].startswith("post_resume started on ")
    # The children belong to the Pause, as in Kestra.
    assert runs["post_resume"]["parentId"] == runs["pause"]["id"]


OLD = """\
# a flow from 2023
id: legacy   # keep me
namespace: company.team
inputs:
  - name: who      # the person
    type: STRING
    defaults: world
taskDefaults:
  - type: io.kestra.core.tasks.log.Log
    values:
      level: WARN
tasks:
  - id: hello
    type: io.kestra.core.tasks.debugs.Echo
    format: 'Hello {{ inputs.who }}'   # quoted (the comment keeps its column)
    retry:
      type: constant
      interval: pt0.25s
      maxAttempt: 2
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    commands:
      - echo "{{ inputs.who }}"
"""

NEW = """\
# a flow from 2023
id: legacy   # keep me
namespace: company.team
inputs:
  - id: who        # the person
    type: STRING
    defaults: world
pluginDefaults:
  - type: io.kestra.plugin.core.log.Log
    values:
      level: WARN
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: 'Hello {{ inputs.who }}'  # quoted (the comment keeps its column)
    retry:
      type: constant
      interval: pt0.25s
      maxAttempts: 2
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo "{{ inputs.who }}"
"""


def test_upgrade_rewrites_older_forms_keeping_comments_and_layout(  # type: ignore[no-untyped-def]
    plait, tmp_path: Path
) -> None:
    flow = tmp_path / "legacy.yaml"
    flow.write_text(OLD)
    result = plait("flows", "validate", str(flow))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 7, result.output
    assert f"warning: {flow}:5:5: inputs[0].id: an input's name is deprecated: use id" in (
        result.output
    )
    result = plait("run", str(flow), "--json")
    assert json.loads(result.stdout)["state"] == "SUCCESS"
    assert "warning:" in result.stderr  # the old forms run, and say so

    result = plait("flows", "upgrade", "--check", str(flow))
    assert result.exit_code == 1
    assert flow.read_text() == OLD  # --check changes nothing
    result = plait("flows", "upgrade", str(flow))
    assert result.exit_code == 0, result.output
    assert flow.read_text() == NEW
    result = plait("flows", "validate", str(flow))
    assert "warning" not in result.output
    result = plait("flows", "upgrade", str(flow))
    assert f"up to date {flow}" in result.output


def test_upgrade_leaves_an_invalid_file_untouched(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "bad.yaml"
    text = OLD.replace("namespace: company.team", "namespace: Bad Space")
    flow.write_text(text)
    result = plait("flows", "upgrade", str(flow))
    assert result.exit_code == 1
    assert "namespace" in result.output
    assert flow.read_text() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0.25s", timedelta(milliseconds=250)),
        ("pt1h", timedelta(hours=1)),
        ("P2D", timedelta(days=2)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("-PT6H", timedelta(hours=-6)),
        ("PT-6H3M", timedelta(hours=-6, minutes=3)),
        ("PT1,5S", timedelta(seconds=1.5)),
        ("PT-0.5S", timedelta(seconds=-0.5)),
        ("P", None),
        ("PT", None),
        ("1 hour", None),
    ],
)
def test_durations_as_java_parses_them(text: str, expected: timedelta | None) -> None:
    assert java_duration(text) == expected


def test_every_model_duration_reads_java_forms() -> None:
    class Waits(Model):
        delay: timedelta
        until: timedelta | None = None

    assert Waits.model_validate({"delay": "pt0.25s", "until": "-PT1M"}).delay == timedelta(
        milliseconds=250
    )
    with pytest.raises(ValueError, match="delay"):
        Waits.model_validate({"delay": "soon"})


def test_task_retry_behavior(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "f.yaml"
    base = (
        "id: f\nnamespace: t\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: hi\n    retry:\n      type: constant\n      interval: PT0.01S\n"
        "      maxAttempts: 2\n      behavior: {}\n"
    )
    flow.write_text(base.format("RETRY_FAILED_TASK"))
    assert plait("run", str(flow), "-q").exit_code == 0
    flow.write_text(base.format("CREATE_NEW_EXECUTION"))
    result = plait("run", str(flow), "-q")
    assert result.exit_code == 1
    assert "set behavior: CREATE_NEW_EXECUTION on the flow's retry" in result.output


def test_a_block_inside_an_expression_shows_both_forms(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nnamespace: t\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n"
        '    format: "{{ {% if inputs is defined %}yes{% endif %} }}"\n'
    )
    result = plait("flows", "validate", str(flow))
    assert result.exit_code == 1
    assert (
        f"{flow}:6:13: tasks[0].format: template does not parse: a {{% %}} block cannot sit "
        "inside {{ }}: written `{{ {% if inputs is defined %}yes{% endif %} }}`, write "
        "`{% if inputs is defined %}yes{% endif %}`"
    ) in result.output
    flow.write_text(flow.read_text().replace('"{{ {%', '"{%').replace("%} }}", "%}"))
    result = plait("run", str(flow), "--json")
    assert json.loads(result.stdout)["taskRuns"][0]["outputs"] == {"value": "yes"}


def test_now_default_undefined_coalescing_and_range_values(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "f.yaml"
    flow.write_text(
        """
id: forms
namespace: company.team
inputs:
  - id: when
    type: DATETIME
    defaults: "{{ now() }}"
  - id: day
    type: DATE
    defaults: "{{now()}}"
  - id: empty
    type: STRING
    required: false
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 3) }}"
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }} {{ inputs.missing ??? 'dflt' }} {{ inputs.empty ??? 'x' }}"
"""
    )
    execution = json.loads(plait("run", str(flow), "--json").stdout)
    assert execution["state"] == "SUCCESS", execution["error"]
    assert execution["inputs"]["when"][:10] == execution["inputs"]["day"]
    assert execution["inputs"]["when"][:4] == execution["history"][0]["date"][:4]
    # range(a, b) includes b, as Pebble's does.
    values = [run["outputs"]["value"] for run in execution["taskRuns"] if run["taskId"] == "r"]
    assert values == [
        "1 dflt ",
        "2 dflt ",
        "3 dflt ",
    ]  # an input given no value is null: ??? keeps it


LISTENERS = """\
id: lis
namespace: company.team
workerGroup:
  key: gpu
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
listeners:
  - conditions:
      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition
        in: [FAILED]
    tasks:
      - id: on_fail
        type: io.kestra.plugin.core.log.Log
        message: "failed: {{ execution.state }}"
  - conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
    tasks:
      - id: on_success
        type: io.kestra.plugin.core.log.Log
        message: never
  - tasks:
      - id: always
        type: io.kestra.plugin.core.log.Log
        message: "ended {{ execution.state }}"
"""


def test_listeners_run_as_after_execution_and_worker_group_is_ignored(  # type: ignore[no-untyped-def]
    plait, tmp_path: Path
) -> None:
    flow = tmp_path / "lis.yaml"
    flow.write_text(LISTENERS)
    result = plait("run", str(flow), "--json")
    execution = json.loads(result.stdout)
    assert execution["state"] == "FAILED"
    states = {run["taskId"]: run["state"] for run in execution["taskRuns"]}
    assert states["on_fail"] == "SUCCESS"
    assert states["always"] == "SUCCESS"
    assert "on_success" not in states
    assert "listeners is deprecated: use afterExecution" in result.stderr
    assert "workerGroup does not apply" in result.stderr
    assert plait("flows", "upgrade", str(flow)).exit_code == 0
    upgraded = flow.read_text()
    assert "listeners" not in upgraded
    assert "workerGroup" not in upgraded
    assert "condition: \"{{ execution.state in ['FAILED'] }}\"" in upgraded
    execution = json.loads(plait("run", str(flow), "--json").stdout)
    assert {run["taskId"]: run["state"] for run in execution["taskRuns"]} == states


def test_assert_names_the_failed_conditions(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nnamespace: t\ntasks:\n  - id: check\n"
        "    type: io.kestra.plugin.core.execution.Assert\n    conditions:\n"
        '      - "{{ 1 == 1 }}"\n      - "{{ 1 == 2 }}"\n      - "{{ \'\' }}"\n'
    )
    execution = json.loads(plait("run", str(flow), "--json").stdout)
    assert execution["state"] == "FAILED"
    assert execution["taskRuns"][0]["error"] == "2 assertion(s) failed: condition 2, condition 3"
    flow.write_text(flow.read_text().replace("1 == 2", "2 == 2").replace("'' }}", "'yes' }}"))
    assert json.loads(plait("run", str(flow), "--json").stdout)["state"] == "SUCCESS"
