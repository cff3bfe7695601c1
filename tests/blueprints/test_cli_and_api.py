"""``plait blueprints list/show/use`` as a user runs them, and the server's blueprint routes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from blueprint_harness import Saas
from click.testing import CliRunner, Result
from live_server import PLAIT, LiveServer, call, start_server


def plait(*args: str, home: Path, check: bool = True) -> Result:
    """``plait ARGS`` in process (click's runner): the same command, without a new
    interpreter and plugin discovery per call."""
    from plait.cli import cli

    done = CliRunner().invoke(cli, list(args), env={"PLAIT_HOME": str(home), "PLAIT_SERVER": ""})
    if check:
        assert done.exit_code == 0, done.output + str(done.exception)
    return done


def test_list_show_and_use_then_run(tmp_path: Path, saas: Saas) -> None:
    home = tmp_path / "home"
    listed = json.loads(plait("blueprints", "list", "--tag", "etl", "--json", home=home).stdout)
    assert [b["id"] for b in listed] == ["etl.http-to-postgres", "s3.load-to-postgres"]
    assert "etl.http-to-postgres" in plait("blueprints", "list", "postgresql", home=home).stdout
    shown = plait("blueprints", "show", "ops.error-notification", home=home).stdout
    assert "webhook_url (STRING, required): The incoming-webhook URL" in shown
    assert "blueprint: ops.error-notification" in shown  # the example call
    assert "type: plait.http.Request" in shown  # the flow
    unknown = plait("blueprints", "show", "ops.error-notifcation", home=home, check=False)
    assert unknown.exit_code == 1
    assert "unknown blueprint 'ops.error-notifcation'; did you mean 'ops.error-notification'?" in (
        unknown.stderr
    )

    # Written out to edit, then run as any flow file (by the real `plait` command).
    out = tmp_path / "notify.yaml"
    plait("blueprints", "use", "ops.error-notification", "--namespace", "company.ops",
          "--id", "notify", "--out", str(out), home=home)  # fmt: skip
    text = out.read_text()
    assert text.startswith("id: notify\nnamespace: company.ops\n")
    hook = saas.mount({"/hook": {"ok": True}})
    env = {**os.environ, "PLAIT_HOME": str(home)}
    env.pop("PLAIT_SERVER", None)
    ran = subprocess.run(
        [str(PLAIT), "run", str(out), "-q", "-i", f"webhook_url={hook.url('/hook')}",
         "-i", "message=hi"], capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert [c.json()["text"] for c in hook.calls("/hook")] == ["hi"]

    # Deployed into the local store.
    deployed = plait("blueprints", "use", "ops.error-notification", "-n", "company.ops", home=home)
    assert deployed.stdout.strip() == (
        "company.ops.error-notification revision 1 (blueprint ops.error-notification)"
    )
    assert "error-notification" in plait("flows", "list", home=home).stdout
    # ... and run from there by its name (its latest revision), as `plait run NAMESPACE.FLOW_ID`.
    ran = subprocess.run(
        [str(PLAIT), "run", "company.ops.error-notification", "-q",
         "-i", f"webhook_url={hook.url('/hook')}", "-i", "message=deployed"],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert [c.json()["text"] for c in hook.calls("/hook")] == ["hi", "deployed"]
    unknown_flow = subprocess.run(
        [str(PLAIT), "run", "company.ops.nothing-here", "-q"],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert unknown_flow.returncode == 1
    assert "no deployed flow company.ops.nothing-here" in unknown_flow.stderr
    bad = plait("blueprints", "use", "ops.error-notification", "-n", "Bad NS", home=home,
                check=False)  # fmt: skip
    assert bad.exit_code == 1
    assert "invalid namespace 'Bad NS'" in bad.stderr


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("bp") / "home")
    try:
        yield server
    finally:
        server.stop()


async def test_the_server_lists_and_serves_blueprints(live: LiveServer, tmp_path: Path) -> None:
    listed = await call(live, "GET", "/blueprints?tag=approval")
    assert [b["id"] for b in listed["results"]] == [
        "approval.amount-threshold",
        "ops.cicd-pipeline",
    ]
    assert listed["total"] == 2
    assert listed["results"][0]["distribution"] == "plait"
    one = await call(live, "GET", "/blueprints/etl.http-to-postgres")
    assert one["plugins"] == {"plait-db": "0.1.0", "plait-http": "0.1.0", "plait-scripts": "0.1.0"}
    assert {k: v for k, v in one["inputs"][-1].items() if k in ("id", "type", "required")} == {
        "id": "table",
        "type": "STRING",
        "required": True,
    }
    assert one["flow"].startswith("id: http-to-postgres")
    await call(live, "GET", "/blueprints/nope.nothing", expect=404)
    await call(live, "GET", "/blueprints", token="wrong", expect=401)
    document = await call(live, "GET", "/openapi.json")
    assert "/api/v1/blueprints/{blueprintId}" in document["paths"]
    assert "BlueprintDetail" in document["components"]["schemas"]

    # `plait blueprints use --server` deploys it there.
    env = {**os.environ, "PLAIT_SERVER": live.url, "PLAIT_TOKEN": live.token or ""}
    done = await asyncio.to_thread(
        subprocess.run,
        [str(PLAIT), "blueprints", "use", "approval.amount-threshold", "-n", "company.fin",
         "--id", "refunds"], capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "company.fin.refunds revision 1" in done.stdout
    flow = await call(live, "GET", "/flows/company.fin/refunds")
    assert flow["namespace"] == "company.fin"
