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


PAUSABLE = """\
id: pausable
namespace: company.ops
tasks:
  - id: nap
    type: plait.core.Sleep
    duration: PT1S
  - id: after
    type: plait.core.Log
    message: woke
"""

#: Many short steps: a CLI process (slow to start on a loaded machine) finds it running.
STEPS = """id: steps
namespace: company.ops
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [{}]
    tasks:
      - id: nap
        type: plait.core.Sleep
        duration: PT0.5S
  - id: after
    type: plait.core.Log
    message: woke
""".format(", ".join(str(i) for i in range(240)))


async def _working(live: LiveServer, execution_id: str) -> None:
    await wait_state(live, execution_id, "RUNNING")
    for _ in range(200):  # the Sleep task run started
        if (await call(live, "GET", f"/executions/{execution_id}"))["taskRunList"]:
            return
        await asyncio.sleep(0.05)


def _local(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the server's own home, without --server: another process that only
    writes the database the server's runner drives from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(live.home)
    return subprocess.run(
        [str(PLAIT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def test_pause_through_the_api_the_remote_cli_and_another_process(
    live: LiveServer,
) -> None:
    for source in (PAUSABLE, STEPS):
        await call(live, "POST", "/flows", data=source, headers=YAML)
    # 1. The API: the running Sleep finishes, 'after' does not start, the execution pauses.
    first = await call(live, "POST", "/executions/company.ops/pausable")
    await _working(live, first["id"])
    asked = await call(live, "POST", f"/executions/{first['id']}/pause")
    assert asked["state"]["current"] == "RUNNING"  # honoured at the next safe point
    paused = await wait_state(live, first["id"], "PAUSED", "SUCCESS")
    assert paused["state"]["current"] == "PAUSED"
    assert [r["taskId"] for r in paused["taskRunList"]] == ["nap"]
    assert paused["taskRunList"][0]["state"]["current"] == "SUCCESS"
    refused = await call(live, "POST", f"/executions/{first['id']}/pause", expect=409)
    assert "PAUSED" in refused["message"]
    await call(live, "POST", f"/executions/{first['id']}/resume")
    done = await wait_state(live, first["id"], "SUCCESS", "FAILED")
    assert [r["taskId"] for r in done["taskRunList"]] == ["nap", "after"]
    await call(live, "POST", f"/executions/{first['id']}/pause", expect=409)
    # 2. The CLI with --server, then 3. the local CLI in another process on the same home.
    for how in ("remote", "local"):
        started = await call(live, "POST", "/executions/company.ops/steps")
        await _working(live, started["id"])
        if how == "remote":
            result = plait(live, "executions", "pause", started["id"], "--wait")
        else:
            result = _local(live, "executions", "pause", started["id"])
        assert result.returncode == 0, result.stderr
        assert started["id"] in result.stderr
        paused = await wait_state(live, started["id"], "PAUSED", "SUCCESS")
        assert paused["state"]["current"] == "PAUSED", how
        runs = paused["taskRunList"]
        assert "after" not in {r["taskId"] for r in runs}
        assert all(r["state"]["current"] != "RUNNING" for r in runs if r["taskId"] == "nap")
        killed = await call(live, "DELETE", f"/executions/{started['id']}/kill")
        assert killed["state"]["current"] == "KILLED"
