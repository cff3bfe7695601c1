"""Labels of a running execution; restart and replay with the real CLI against a live server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from live_server import PLAIT, YAML, LiveServer, call, wait_state


def plait(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with $PLAIT_SERVER and $PLAIT_TOKEN (its home is not the server's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(live.home.parent / "client-home")
    env.update(PLAIT_SERVER=live.url, PLAIT_TOKEN=live.token or "")
    return subprocess.run(
        [str(PLAIT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


SLOW = """\
id: slow
namespace: company.ops
tasks:
  - id: nap
    type: plait.core.Sleep
    duration: PT60S
  - id: after
    type: plait.core.Log
    message: woke
"""


async def test_labels_of_a_running_execution_are_kept(live: LiveServer) -> None:
    await call(live, "POST", "/flows", data=SLOW, headers=YAML)
    started = await call(live, "POST", "/executions/company.ops/slow", json={"labels": {"a": "1"}})
    await wait_state(live, started["id"], "RUNNING")
    for _ in range(200):  # the Sleep task run started: the engine holds the execution
        found = await call(live, "GET", f"/executions/{started['id']}")
        if found["taskRunList"]:
            break
        await asyncio.sleep(0.05)
    changed = await call(
        live, "POST", f"/executions/{started['id']}/labels",
        json=[{"key": "owner", "value": "ops"}],
    )  # fmt: skip
    assert changed["labels"] == [{"key": "owner", "value": "ops"}]
    assert changed["state"]["current"] == "RUNNING"
    await call(live, "DELETE", f"/executions/{started['id']}/kill")
    ended = await wait_state(live, started["id"], "KILLED")
    # The engine's later commits kept the new labels instead of writing its old copy back.
    assert ended["labels"] == [{"key": "owner", "value": "ops"}]
    listed = await call(live, "GET", "/executions/search?labels=owner:ops")
    assert started["id"] in {e["id"] for e in listed["results"]}


async def test_cli_restart_and_replay_with_server(live: LiveServer, tmp_path: Path) -> None:
    failing = tmp_path / "fail.yaml"
    failing.write_text(
        "id: flaky\nnamespace: company.cli\ntasks:\n  - id: hi\n    type: plait.core.Log\n"
        "    message: hello there\n  - id: boom\n    type: plait.core.Fail\n"
        "    errorMessage: disk full\n"
    )
    done = await asyncio.to_thread(plait, live, "run", str(failing), "--json")
    assert done.returncode == 1
    failed = json.loads(done.stdout)
    restarted = await asyncio.to_thread(plait, live, "executions", "restart", failed["id"])
    assert restarted.returncode == 1, restarted.stderr  # fails again, like the local command
    assert "disk full" in restarted.stdout
    again = await call(live, "GET", f"/executions/{failed['id']}")
    boom = next(r for r in again["taskRunList"] if r["taskId"] == "boom")
    assert len(boom["attempts"]) == 2
    replayed = await asyncio.to_thread(plait, live, "executions", "replay", failed["id"], "--json")
    assert replayed.returncode == 1, replayed.stderr
    replay = json.loads(replayed.stdout)
    assert replay["id"] != failed["id"]
    assert replay["state"]["current"] == "FAILED"
    ok = await asyncio.to_thread(
        plait, live, "executions", "replay", failed["id"], "--from",
        next(r["id"] for r in again["taskRunList"] if r["taskId"] == "hi"), "--quiet",
    )  # fmt: skip
    assert ok.returncode == 1
    bad = await asyncio.to_thread(plait, live, "executions", "restart", "nope")
    assert bad.returncode == 1
    assert "not found" in bad.stderr


async def test_a_revision_beyond_32_bits_is_a_400_not_a_500(live: LiveServer) -> None:
    """Found by schemathesis: SQLite overflowed on the number (500)."""
    huge = "22567807599539458048"
    for method, path in (
        ("POST", f"/flows/examples/hello/rollback?revision={huge}"),
        ("GET", f"/flows/examples/hello?revision={huge}"),
        ("GET", f"/flows/examples/hello/diff?from=1&to={huge}"),
        ("POST", f"/flows/examples/hello/rollback?revision={2**31}"),
        ("POST", f"/executions/examples/hello?revision={huge}"),
    ):
        await call(live, method, path, expect=400)
    await call(live, "POST", "/flows/examples/hello/rollback?revision=2147483647", expect=404)
