"""Start-up, graceful shutdown, kill -9 recovery and the configuration file, on live servers."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest
from live_server import YAML, LiveServer, call, start_server, wait_state
from plait.server import load_config
from plait_sdk import UserError

NAP = """\
id: nap
namespace: company.team
tasks:
  - id: before
    type: plait.core.Log
    message: before
  - id: nap
    type: plait.core.Sleep
    duration: PT2S
  - id: after
    type: plait.core.Log
    message: after
"""


async def running(live: LiveServer) -> str:
    await call(live, "POST", "/flows", data=NAP, headers=YAML)
    started = await call(live, "POST", "/executions/company.team/nap")
    await wait_state(live, started["id"], "RUNNING")
    return str(started["id"])


async def test_sigterm_lets_running_executions_finish(tmp_path: Path) -> None:
    live = start_server(tmp_path / "home")
    execution_id = await running(live)
    assert live.stop(signal.SIGTERM) == 0
    assert "stopped" in live.log()
    again = start_server(tmp_path / "home")
    try:
        assert again.token is None  # the admin token is printed on first start only
        done = await call(again, "GET", f"/executions/{execution_id}", token=live.token)
        assert done["state"]["current"] == "SUCCESS"
    finally:
        again.stop()


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM, no grace"])
async def test_an_interrupted_execution_is_recovered_at_the_next_start(
    tmp_path: Path, how: str
) -> None:
    env = {"PLAIT_SHUTDOWN_GRACE": "0"}
    live = start_server(tmp_path / "home", env=env)
    execution_id = await running(live)
    live.stop(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
    again = start_server(tmp_path / "home")
    try:
        assert "recovering 1 unfinished execution(s)" in again.log()
        live.url = again.url  # same token, new process
        done = await wait_state(live, execution_id, "SUCCESS", "FAILED")
        assert done["state"]["current"] == "SUCCESS"
        lines = await call(live, "GET", f"/logs/{execution_id}")
        assert [line["message"] for line in lines].count("after") == 1
    finally:
        again.stop()


async def test_config_file_and_json_logs(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("log_format: json\nmax_body_bytes: 2048\n")
    live = start_server(tmp_path / "home", env={"PLAIT_CONFIG": str(config)})
    try:
        await call(live, "POST", "/flows", data="x" * 4096, headers=YAML, expect=413)
        await asyncio.sleep(0.2)
        logged = [json.loads(line) for line in live.log().splitlines() if line.startswith("{")]
        assert any(entry["level"] == "WARNING" and "413" in entry["message"] for entry in logged)
    finally:
        live.stop()


def test_config_precedence_file_then_env_then_options(tmp_path: Path) -> None:
    file = tmp_path / "plait.yaml"
    file.write_text("host: 0.0.0.0\nport: 9000\ncors_origins: [https://a.example]\n")
    env = {"PLAIT_PORT": "9100", "PLAIT_CORS_ORIGINS": "https://b.example, https://c.example"}
    config = load_config(file, environ=env, overrides={"host": "127.0.0.2", "port": None})
    assert (config.host, config.port) == ("127.0.0.2", 9100)
    assert config.cors_origins == ["https://b.example", "https://c.example"]
    assert load_config(None, environ={}).port == 8080


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("port: lots\n", {}, "port"),
        ("prot: 1\n", {}, "prot"),
        ("- a list\n", {}, "mapping"),
        ("", {"PLAIT_LOG_FORMAT": "xml"}, "log_format"),
    ],
)
def test_invalid_config_is_one_clear_error(
    tmp_path: Path, text: str, env: dict[str, str], words: str
) -> None:
    file = tmp_path / "plait.yaml"
    file.write_text(text)
    with pytest.raises(UserError, match=words):
        load_config(file, environ=env)


def test_only_monitoring_paths_can_be_public(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot be public"):
        load_config(None, environ={"PLAIT_PUBLIC_PATHS": "/health,/api/v1/flows"})


async def test_per_token_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    env = {"PLAIT_RATE_LIMIT": "0.5", "PLAIT_RATE_BURST": "3"}
    live = start_server(tmp_path / "home", env=env)
    try:
        for _ in range(3):
            await call(live, "GET", "/flows/search")
        refused = await call(live, "GET", "/flows/search", expect=429)
        assert "too many requests" in refused["message"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(live.api + "/flows/search", headers=live.headers()) as response,
        ):
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
        other = await call(live, "POST", "/tokens", expect=429, json={"name": "x"})
        assert other["status"] == 429
        async with aiohttp.ClientSession() as session:  # the public routes are not limited
            for _ in range(5):
                async with session.get(live.url + "/health") as response:
                    assert response.status == 200
    finally:
        live.stop()


CHILD = """\
id: child
namespace: company.team
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
  - id: work
    type: plait.core.Sleep
    duration: PT2S
  - id: done
    type: plait.core.Log
    message: child done
"""

PARENT = """\
id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
  - id: after
    type: plait.core.Log
    message: "parent saw {{ outputs.call.state }}"
"""


async def test_kill_9_with_a_running_child_under_a_paused_parent(tmp_path: Path) -> None:
    """The parent waits PAUSED for its child (which paused, then was resumed and runs): after
    a kill -9, the next start recovers the child too, and the child's end resumes the parent."""
    live = start_server(tmp_path / "home", env={"PLAIT_SHUTDOWN_GRACE": "0"})
    for source in (CHILD, PARENT):
        await call(live, "POST", "/flows", data=source, headers=YAML)
    parent = await call(live, "POST", "/executions/company.team/parent")
    waiting = await wait_state(live, parent["id"], "PAUSED")
    child_id = next(r for r in waiting["taskRunList"] if r["taskId"] == "call")["outputs"][
        "executionId"
    ]
    await wait_state(live, child_id, "PAUSED")
    await call(live, "POST", f"/executions/{child_id}/resume")
    await wait_state(live, child_id, "RUNNING")
    assert (await call(live, "GET", f"/executions/{parent['id']}"))["state"]["current"] == "PAUSED"
    live.stop(signal.SIGKILL)
    again = start_server(tmp_path / "home")
    try:
        assert "recovering 2 unfinished execution(s)" in again.log()
        live.url = again.url
        child = await wait_state(live, child_id, "SUCCESS", "FAILED", "KILLED")
        assert child["state"]["current"] == "SUCCESS"
        done = await wait_state(live, parent["id"], "SUCCESS", "FAILED", "KILLED")
        assert done["state"]["current"] == "SUCCESS"
        lines = [line["message"] for line in await call(live, "GET", f"/logs/{parent['id']}")]
        assert lines.count("parent saw SUCCESS") == 1
    finally:
        again.stop()
