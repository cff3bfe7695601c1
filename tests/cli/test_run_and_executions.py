"""`plait run`, `plait run-examples`, `plait executions ...` and `plait flows deploy|list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from plait.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def plait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLAIT_MASTER_KEY", raising=False)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)

    return invoke


def test_run_prints_the_execution_and_exits_0(plait) -> None:  # type: ignore[no-untyped-def]
    result = plait("run", str(EXAMPLES / "hello.yaml"), "-i", "name=Ada", "--json")
    assert result.exit_code == 0, result.output
    execution = json.loads(result.stdout)
    assert execution["state"] == "SUCCESS"
    assert execution["outputs"] == {"greeting": "Hello ADA!"}
    assert execution["inputs"] == {"name": "Ada"}


def test_run_a_failing_flow_exits_1_with_the_error(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "fail.yaml"
    flow.write_text(
        "id: f\nnamespace: t\ntasks:\n  - id: boom\n    type: plait.core.Fail\n"
        "    errorMessage: disk full\n"
    )
    result = plait("run", str(flow))
    assert result.exit_code == 1
    assert "disk full" in result.output
    assert "Traceback" not in result.output


def test_invalid_flow_and_bad_inputs_are_one_clear_message(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "bad.yaml"
    flow.write_text("id: f\nnamespace: t\ntasks:\n  - id: a\n    type: plait.core.Lgo\n")
    result = plait("run", str(flow))
    assert result.exit_code == 1
    assert f"{flow}:5:11: tasks[0].type: unknown task type 'plait.core.Lgo'" in result.output
    assert "Traceback" not in result.output
    result = plait("run", str(EXAMPLES / "conditional.yaml"), "-i", "amount=lots")
    assert result.exit_code == 1
    assert "amount" in result.output
    assert "Traceback" not in result.output
    result = plait("run", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 1
    assert "no such flow file" in result.output


def test_pause_resume_and_inspect(plait) -> None:  # type: ignore[no-untyped-def]
    paused = plait("run", str(EXAMPLES / "approval.yaml"), "--json")
    assert paused.exit_code == 0, paused.output
    execution_id = json.loads(paused.stdout)["id"]
    assert json.loads(paused.stdout)["state"] == "PAUSED"
    listed = plait("executions", "list", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [execution_id]
    bad = plait("executions", "resume", execution_id, "-i", "approved=perhaps")
    assert bad.exit_code == 1
    assert "approved" in bad.output
    done = plait(
        "executions", "resume", execution_id, "-i", "approved=true", "-i", "reason=LGTM", "--json"
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["state"] == "SUCCESS"
    logs = plait("executions", "logs", execution_id, "--json")
    messages = [r["message"] for r in json.loads(logs.stdout)]
    assert "released (LGTM)" in messages
    shown = plait("executions", "show", execution_id)
    assert "wait_for_approval" in shown.output
    assert "SUCCESS" in shown.output
    again = plait("executions", "replay", execution_id, "--json")
    assert json.loads(again.stdout)["originalId"] == execution_id


def test_kill_a_paused_execution_and_restart_a_failed_one(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paused = json.loads(plait("run", str(EXAMPLES / "approval.yaml"), "--json").stdout)
    killed = plait("executions", "kill", paused["id"])
    assert killed.exit_code == 0
    assert "KILLED" in killed.output
    restarted = json.loads(plait("executions", "restart", paused["id"], "--json").stdout)
    assert restarted["id"] == paused["id"]
    assert restarted["state"] == "PAUSED"  # killed at the pause: restarted, it pauses again
    # A failed execution: the task that failed runs again, the one that succeeded does not.
    flow = tmp_path / "gate.yaml"
    flow.write_text(
        "id: gate\nnamespace: test\ntasks:\n"
        "  - {id: before, type: plait.core.Log, message: once}\n"
        "  - id: gate\n"
        "    type: plait.core.Fail\n"
        "    condition: \"{{ kv('open', errorOnMissing=false) != 'yes' }}\"\n"
        "    errorMessage: the gate is closed\n"
    )
    failed = json.loads(plait("run", str(flow), "--json").stdout)
    assert failed["state"] == "FAILED"
    assert plait("kv", "set", "test", "open", "yes").exit_code == 0
    result = plait("executions", "restart", failed["id"], "--json")
    assert result.exit_code == 0, result.output
    restarted = json.loads(result.stdout)
    assert restarted["id"] == failed["id"]
    assert restarted["state"] == "SUCCESS"
    runs = {r["taskId"]: r for r in restarted["taskRuns"]}
    assert runs["gate"]["state"] == "SUCCESS"
    assert len(runs["gate"]["attempts"]) == 2
    assert len(runs["before"]["attempts"]) == 1
    unknown = plait("executions", "show", "nope")
    assert unknown.exit_code == 1
    assert "no execution with id nope" in unknown.output


def test_run_examples_runs_every_example(plait) -> None:  # type: ignore[no-untyped-def]
    result = plait("run-examples", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    for name in ("hello.yaml", "etl.yaml", "state_machine.yaml", "subflow.yaml", "approval.yaml"):
        assert name in result.output
    # batches.yaml: ForEachItem ran one child execution per batch of two orders.
    row = next(line for line in result.output.splitlines() if "batches.yaml" in line)
    assert "SUCCESS" in row
    assert '{"batches": 3}' in row
    # retry.yaml: the first execution RETRIED, the second succeeded (the row shows the last).
    row = next(line for line in result.output.splitlines() if "retry.yaml" in line)
    assert "SUCCESS" in row
    listed = json.loads(plait("executions", "list", "--json").stdout)
    assert sorted(e["state"] for e in listed if e["flowId"] == "retry") == ["RETRIED", "SUCCESS"]


def test_flows_deploy_and_list(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deployed = plait("flows", "deploy", str(EXAMPLES))
    assert deployed.exit_code == 0, deployed.output
    assert "examples.hello revision 1" in deployed.output
    again = plait("flows", "deploy", str(EXAMPLES / "hello.yaml"))
    assert "examples.hello revision 1" in again.output  # unchanged source, same revision
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nnamespace: t\ntasks: []\n")
    refused = plait("flows", "deploy", str(EXAMPLES / "hello.yaml"), str(bad))
    assert refused.exit_code == 1
    listed = plait("flows", "list")
    assert "order_lifecycle" in listed.output
    assert " x " not in listed.output


def test_run_follows_a_flow_level_retry_to_the_last_try(plait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "retried.yaml"
    flow.write_text(
        "id: retried\nnamespace: cli\n"
        "retry: {behavior: CREATE_NEW_EXECUTION, type: constant, interval: PT0.05S,"
        " maxAttempts: 3}\n"
        "tasks:\n"
        "  - id: upstream\n    type: plait.core.Fail\n"
        '    condition: "{{ execution.retryAttempt < 3 }}"\n'
        "    errorMessage: not ready\n",
        "utf-8",
    )
    result = plait("run", str(flow))
    assert result.exit_code == 0, result.output
    assert "try 2 of 3 is execution" in result.output
    assert "try 3 of 3 is execution" in result.output
    assert "SUCCESS  " in result.output
    assert "try 3" in result.output
    listed = plait("executions", "list", "--json")
    states = sorted(e["state"] for e in json.loads(listed.stdout))
    assert states == ["RETRIED", "RETRIED", "SUCCESS"]
    # Exhausted: the last try's state decides the exit code.
    flow.write_text(flow.read_text("utf-8").replace("< 3", "< 9"), "utf-8")
    result = plait("run", str(flow))
    assert result.exit_code == 1
    assert "error: task 'upstream' failed: not ready" in result.output
