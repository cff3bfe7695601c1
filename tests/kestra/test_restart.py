"""Restart as Kestra restarts: flows from Kestra's documentation run, fail, and are restarted
through the real CLI (in-process) and through the API of a live server.

Each file under ``restart/`` has, next to the compat suite's ``state``/``states``, a
``restarted`` block for the execution after ``plait executions restart``:

- ``state``, ``states``, ``tasks``: as in the compat suite;
- ``attempts``: the number of attempts of each run of a task, in the order they were created;
- ``absent``: tasks with no run any more (handler runs a restart removed);
- ``renewed``: tasks whose run is a new one (another id); ``kept``: tasks whose run is the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from live_server import YAML, LiveServer, call, start_server, wait_state
from plait.cli import cli

from .test_compat_suite import expectation, matches

FLOWS = Path(__file__).parent / "restart"
FILES = sorted(p.name for p in FLOWS.glob("*.yaml"))


def by_task(execution: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in execution["taskRuns"]:
        runs.setdefault(run["taskId"], []).append(run)
    return runs


def check(expected: dict[str, Any], execution: dict[str, Any], before: dict[str, Any]) -> None:
    assert execution["state"] == expected["state"], execution.get("error")
    runs = by_task(execution)
    for task_id, state in (expected.get("states") or {}).items():
        assert runs[task_id][-1]["state"] == state, task_id
    for task_id, outputs in (expected.get("tasks") or {}).items():
        actual = [run["outputs"] for run in runs.get(task_id, [])]
        wanted = outputs if isinstance(outputs, list) else [outputs]
        assert matches(wanted, actual), f"{task_id}: {actual} does not match {wanted}"
    for task_id, counts in (expected.get("attempts") or {}).items():
        assert [len(r["attempts"]) for r in runs.get(task_id, [])] == counts, task_id
    for task_id in expected.get("absent") or []:
        assert task_id not in runs, task_id
    old = by_task(before)
    for task_id in expected.get("renewed") or []:
        assert {r["id"] for r in runs[task_id]}.isdisjoint({r["id"] for r in old[task_id]})
    for task_id in expected.get("kept") or []:
        assert [r["id"] for r in runs[task_id]] == [r["id"] for r in old[task_id]]


def plait(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, [*args, "--json", "--home", str(home)])
    assert result.stdout.startswith("{"), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("name", FILES)
def test_restart_over_the_cli(name: str, tmp_path: Path) -> None:
    expected = expectation(FLOWS / name)
    code, first = plait(tmp_path, "run", str(FLOWS / name))
    assert code == 1
    check(expected, first, first)
    code, again = plait(tmp_path, "executions", "restart", first["id"])
    restarted = expected["restarted"]
    assert code == (0 if restarted["state"] == "SUCCESS" else 1)
    assert again["id"] == first["id"]
    assert again["attempt"] == 2
    assert again["labels"] == {"system.restarted": "true"}
    check(restarted, again, first)
    code, stored = plait(tmp_path, "executions", "show", first["id"])
    check(restarted, stored, first)  # what the store holds: removed runs are gone from it


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("server") / "home")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["for_each.yaml", "working_directory.yaml"])
async def test_restart_over_the_api(name: str, live: LiveServer) -> None:
    expected = expectation(FLOWS / name)
    source = (FLOWS / name).read_text("utf-8")
    flow = await call(live, "POST", "/flows", data=source, headers=YAML)
    started = await call(live, "POST", f"/executions/{flow['namespace']}/{flow['id']}")
    first = await wait_state(live, started["id"], "FAILED")
    await call(live, "POST", f"/executions/{first['id']}/restart")
    again = await wait_state(live, first["id"], "SUCCESS", "FAILED")
    by_id = {r["id"]: r for r in again["taskRunList"]}
    assert len(by_id) == len(again["taskRunList"])
    assert again["labels"] == [{"key": "system.restarted", "value": "true"}]
    restarted = expected["restarted"]
    assert again["state"]["current"] == restarted["state"]
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in again["taskRunList"]:
        runs.setdefault(run["taskId"], []).append(run)
    for task_id, counts in restarted["attempts"].items():
        assert [len(r["attempts"]) for r in runs[task_id]] == counts, task_id
    for task_id in restarted.get("absent") or []:
        assert task_id not in runs
