"""Kestra compatibility suite: flows from Kestra's documentation, run as they are written.

Each file under ``flows/`` is a flow copied from a Kestra documentation page (its URL in a
``# source:`` comment) with what the page says it does in an ``# expect:`` comment block (YAML):

- ``state``: the execution's final state;
- ``outputs``: the flow's outputs (every one, each compared as task outputs are);
- ``tasks``: outputs of task runs by task id: a mapping for a task that runs once, a list (in
  the order they ran) for one that runs in a loop; only the keys given are compared, and a
  string starting with ``~re:`` is a regular expression the whole value must match;
- ``states``: the final state of a task's (last) run, by task id;
- ``warnings``: text each of some validation warning must contain (deprecated forms);
- ``absent``: tasks that must not have run;
- ``labels``: labels the execution must carry (others may be there too).

All of them run in ONE ``plait run-examples --json`` (the real CLI and engine, in-process),
so the suite stays fast as it grows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from plait.cli import cli

FLOWS = Path(__file__).parent / "flows"
FILES = sorted(p.name for p in FLOWS.glob("*.yaml"))


def expectation(file: Path) -> dict[str, Any]:
    """The ``# expect:`` block of a flow file, and its ``# source:`` URL."""
    lines = file.read_text("utf-8").splitlines()
    source = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# source:")), "")
    assert source.startswith("https://"), f"{file.name}: no '# source: URL' comment"
    start = lines.index("# expect:") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line[4:])
    found: dict[str, Any] = yaml.safe_load("\n".join(block))
    assert isinstance(found, dict), f"{file.name}: the expect block is not a mapping"
    assert "state" in found, f"{file.name}: no expected state"
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(
        cli,
        ["run-examples", str(FLOWS), "--json", "--home", str(home)],
        catch_exceptions=False,
        env={"ENV_GREETING": "hello", "PLAIT_GLOBALS": "{region: eu, retries: 3}"},
    )
    assert result.exit_code in (0, 1), result.output
    assert result.stdout.startswith("["), result.output  # a flow that does not validate
    return {item["file"]: item for item in json.loads(result.stdout)}


def matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and expected.startswith("~re:"):
        return isinstance(actual, str) and re.fullmatch(expected[4:], actual) is not None
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


@pytest.mark.parametrize("name", FILES)
def test_documented_flow_ends_as_kestra_says(name: str, results: dict[str, Any]) -> None:
    expected = expectation(FLOWS / name)
    item = results[name]
    execution = item["execution"]
    assert execution["state"] == expected["state"], execution.get("error")
    if "outputs" in expected:
        assert set(execution["outputs"]) == set(expected["outputs"])
        assert matches(expected["outputs"], execution["outputs"]), execution["outputs"]
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in execution["taskRuns"]:
        runs.setdefault(run["taskId"], []).append(run)
    for task_id, outputs in (expected.get("tasks") or {}).items():
        actual = [run["outputs"] for run in runs.get(task_id, [])]
        wanted = outputs if isinstance(outputs, list) else [outputs]
        assert matches(wanted, actual), f"{task_id}: {actual} does not match {wanted}"
    for task_id, state in (expected.get("states") or {}).items():
        assert task_id in runs, f"{task_id} did not run"
        assert runs[task_id][-1]["state"] == state, task_id
    for task_id in expected.get("absent") or []:
        assert task_id not in runs, f"{task_id} ran"
    for key, value in (expected.get("labels") or {}).items():
        assert execution["labels"].get(key) == value, (key, execution["labels"])
    for text in expected.get("warnings") or []:
        assert any(text in warning for warning in item["warnings"]), (text, item["warnings"])
    if not expected.get("warnings"):
        assert item["warnings"] == [], "a current-syntax flow must validate without warnings"
