"""The CLI against a live server (``--server`` / ``$PLAIT_SERVER`` and ``$PLAIT_TOKEN``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from live_server import EXAMPLES, PLAIT, LiveServer, call


def plait(live: LiveServer, *args: str, server: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(live.home.parent / "client-home")  # never the server's own
    if server:
        env.update(PLAIT_SERVER=live.url, PLAIT_TOKEN=live.token or "")
    return subprocess.run(
        [str(PLAIT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


FLOW = """\
id: remote
namespace: company.cli
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: say
    type: plait.core.Log
    message: "hi {{ inputs.who }}"
"""


async def test_deploy_sync_and_delete(live: LiveServer, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "remote.yaml").write_text(FLOW)
    (folder / "other.yaml").write_text(FLOW.replace("id: remote", "id: other"))
    done = plait(live, "flows", "deploy", str(folder))
    assert done.returncode == 0, done.stderr
    assert "company.cli.other revision 1" in done.stdout
    (folder / "remote.yaml").write_text(FLOW.replace("hi", "hello"))
    (folder / "other.yaml").unlink()
    done = plait(live, "flows", "deploy", str(folder))
    assert "company.cli.remote revision 2" in done.stdout
    # sync without --delete keeps the server's other flows; with it they go.
    done = plait(live, "flows", "sync", str(folder))
    assert done.returncode == 0, done.stderr
    await call(live, "GET", "/flows/company.cli/other")
    scope = {"name": "sync", "role": "editor", "namespace": "company.cli"}
    token = await call(live, "POST", "/tokens", expect=201, json=scope)
    env_live = LiveServer(live.process, live.url, token["token"], live.home, live.lines)
    done = plait(env_live, "flows", "sync", str(folder), "--delete")
    assert done.returncode == 0, done.stderr
    assert "company.cli.other deleted" in done.stdout
    assert "examples." not in done.stdout  # outside the token's namespace: untouched
    await call(live, "GET", "/flows/company.cli/other", expect=404)
    await call(live, "GET", "/flows/examples/hello")
    bad = folder / "bad.yaml"
    bad.write_text("id: bad\nnamespace: company.cli\ntasks:\n  - id: a\n    type: plait.core.Lgo\n")
    done = plait(live, "flows", "deploy", str(bad))
    assert done.returncode == 1
    assert f"{bad}:5:11: tasks[0].type: unknown task type" in done.stderr
    assert "Traceback" not in done.stderr


async def test_run_list_show_logs_follow_resume(live: LiveServer, tmp_path: Path) -> None:
    flow = tmp_path / "remote.yaml"
    flow.write_text(FLOW.replace("id: remote", "id: runme"))
    done = plait(live, "run", str(flow), "-i", "who=Ada")
    assert done.returncode == 0, done.stderr
    assert "hi Ada" in done.stdout
    assert "SUCCESS" in done.stdout
    failing = tmp_path / "fail.yaml"
    failing.write_text(
        "id: failing\nnamespace: company.cli\ntasks:\n  - id: boom\n    type: plait.core.Fail\n"
        "    errorMessage: disk full\n"
    )
    done = plait(live, "run", str(failing), "--json")
    assert done.returncode == 1
    failed = json.loads(done.stdout)
    assert failed["state"]["current"] == "FAILED"
    listed = plait(live, "executions", "list", "--namespace", "company.cli", "--json")
    assert failed["id"] in {e["id"] for e in json.loads(listed.stdout)}
    shown = plait(live, "executions", "show", failed["id"])
    assert "boom  FAILED" in shown.stdout
    logs = plait(live, "executions", "logs", failed["id"], "--follow")
    assert logs.returncode == 0
    assert "disk full" in logs.stdout
    paused = plait(live, "run", str(EXAMPLES / "approval.yaml"), "--json")
    assert paused.returncode == 0, paused.stderr
    execution_id = json.loads(paused.stdout)["id"]
    resumed = plait(live, "executions", "resume", execution_id, "-i", "approved=true")
    assert resumed.returncode == 0, resumed.stderr
    assert "released" in resumed.stdout
    local = plait(live, "executions", "logs", execution_id, "--follow", server=False)
    assert local.returncode == 1
    assert "--follow works with --server only" in local.stderr
    nobody = plait(live, "executions", "list", "--server", "http://127.0.0.1:9", server=False)
    assert nobody.returncode == 1
    assert "needs a token" in nobody.stderr or "cannot reach" in nobody.stderr
