"""Flow triggers, conditions, webhook files and replies, and unlocking, over real HTTP against
one server subprocess: an execution that ends starts the downstream flow with Kestra's
trigger.* variables; a webhook whose conditions fail answers 204 and starts nothing (the reason
shows in /api/v1/triggers); a binary or large body becomes a file of the new execution; the
reply is what responseCode/responseBody/... say; a trigger stuck evaluating is unlocked by the
API and the CLI."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live_server import PLAIT, LiveServer, call, start_server, wait_state

KEY = "events-key-0123456789"
FLOWS = {
    "upstream": f"""id: upstream
namespace: ev
labels:
  team: data
tasks:
  - id: ret
    type: plait.core.Return
    format: "{{{{ trigger.body.day ?? 'none' }}}}"
outputs:
  - id: day
    type: STRING
    value: "{{{{ outputs.ret.value }}}}"
triggers:
  - id: hook
    type: plait.core.Webhook
    key: {KEY}
""",
    "downstream": """id: downstream
namespace: ev
inputs:
  - id: day
    type: STRING
tasks:
  - id: log
    type: plait.core.Log
    message: "{{ inputs.day }}"
triggers:
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      day: "{{ trigger.outputs.day }}"
    preconditions:
      id: up
      flows:
        - namespace: ev
          flowId: upstream
          states: [SUCCESS]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels:
          team: data
""",
    "gated": f"""id: gated
namespace: ev
tasks:
  - id: log
    type: plait.core.Log
    message: "{{{{ trigger.body }}}}"
triggers:
  - id: hook
    type: plait.core.Webhook
    key: {KEY}
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{{{ trigger.body.action == 'opened' }}}}"
      - type: io.kestra.plugin.core.condition.Not
        conditions:
          - type: io.kestra.plugin.core.condition.DayWeek
            dayOfWeek: MONDAY
            date: "2026-01-05T10:00:00+00:00"
""",
    "files": f"""id: files
namespace: ev
tasks:
  - id: size
    type: plait.core.Log
    message: "{{{{ trigger.body }}}}"
triggers:
  - id: hook
    type: plait.core.Webhook
    key: {KEY}
    wait: true
""",
    "reply": f"""id: reply
namespace: ev
tasks:
  - id: ret
    type: plait.core.Return
    format: "pong {{{{ trigger.parameters.n[0] }}}}"
triggers:
  - id: hook
    type: plait.core.Webhook
    key: {KEY}
    wait: true
    responseCode: "{{{{ 200 + 1 }}}}"
    responseContentType: text/plain
    responseHeaders:
      X-Execution: "{{{{ execution.id }}}}"
    responseBody: "{{{{ outputs.ret.value }}}}"
""",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("events")
    flows = root / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / f"{name}.yaml").write_text(text)
    server = start_server(root / "home", "--deploy", str(flows))
    try:
        yield server
    finally:
        server.stop()


async def hook(
    live: LiveServer,
    flow_id: str,
    body: bytes,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    url = f"{live.api}/executions/webhook/ev/{flow_id}/{KEY}"
    headers = {"Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, params=params) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def triggers(live: LiveServer) -> dict[str, dict[str, Any]]:
    found = await call(live, "GET", "/triggers", params={"namespace": "ev"})
    return {f"{t['flowId']}/{t['triggerId']}": t for t in found["results"]}


async def executions(live: LiveServer, flow_id: str) -> list[dict[str, Any]]:
    found = await call(
        live, "GET", "/executions/search", params={"namespace": "ev", "flowId": flow_id}
    )
    return list(found["results"])


async def test_an_ended_execution_starts_the_downstream_flow(live: LiveServer) -> None:
    # The loop has seen the flow trigger (it counts executions that end from then on).
    for _ in range(200):
        if (await triggers(live))["downstream/after_upstream"]["lastEvaluation"]:
            break
        await asyncio.sleep(0.05)
    status, _, body = await hook(live, "upstream", b'{"day": "2026-05-01"}')
    assert status == 200, body
    upstream_id = (await executions(live, "upstream"))[0]["id"]
    await wait_state(live, upstream_id, "SUCCESS")
    for _ in range(400):
        started = await executions(live, "downstream")
        if started:
            break
        await asyncio.sleep(0.05)
    [down] = started
    done = await wait_state(live, down["id"], "SUCCESS")
    variables = done["trigger"]["variables"]
    assert variables["executionId"] == upstream_id
    assert variables["flowId"] == "upstream"
    assert variables["namespace"] == "ev"
    assert variables["state"] == "SUCCESS"
    assert variables["outputs"] == {"day": "2026-05-01"}
    assert variables["executionLabels"] == {"team": "data"}
    assert done["inputs"] == {"day": "2026-05-01"}
    await asyncio.sleep(1.5)  # further passes start nothing more
    assert len(await executions(live, "downstream")) == 1


async def test_conditions_not_met_answer_204_and_show_why(live: LiveServer) -> None:
    status, _, body = await hook(live, "gated", b'{"action": "closed"}')
    assert (status, body) == (204, b"")
    assert await executions(live, "gated") == []
    state = (await triggers(live))["gated/hook"]
    assert state["lastCondition"] == "condition 1 (Expression) is false"
    status, _, body = await hook(live, "gated", b'{"action": "opened"}')
    # 2026-01-05 is a Monday: Not(DayWeek MONDAY) is false.
    assert status == 204
    state = (await triggers(live))["gated/hook"]
    assert state["lastCondition"] == "condition 2 (Not) is false"
    assert await executions(live, "gated") == []


async def test_a_binary_body_is_a_file_of_the_new_execution(live: LiveServer) -> None:
    payload = bytes(range(256)) * 4
    status, _, body = await hook(live, "files", payload, "application/octet-stream")
    assert status == 200, body
    [execution] = await executions(live, "files")
    found = await call(live, "GET", f"/executions/{execution['id']}")
    uri = found["trigger"]["variables"]["body"]
    assert uri.startswith(f"plait:///ev/files/executions/{execution['id']}/")
    assert found["trigger"]["variables"]["uri"] == uri
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{live.api}/executions/{execution['id']}/file",
            params={"path": uri},
            headers=live.headers(),
        ) as response,
    ):
        assert response.status == 200
        assert await response.read() == payload
    # Text stays inline.
    status, _, _ = await hook(live, "files", b"hello", "text/plain")
    assert status == 200
    texts = [e for e in await executions(live, "files") if e["id"] != execution["id"]]
    found = await call(live, "GET", f"/executions/{texts[0]['id']}")
    assert found["trigger"]["variables"]["body"] == "hello"


async def test_the_reply_is_what_the_trigger_says(live: LiveServer) -> None:
    status, headers, body = await hook(live, "reply", b"{}", params={"n": "7"})
    assert status == 201
    assert body == b"pong 7"
    assert headers["Content-Type"].startswith("text/plain")
    [execution] = await executions(live, "reply")
    assert headers["X-Execution"] == execution["id"]


def _lock(home: Path, flow_id: str, trigger_id: str) -> None:
    """What a process that died mid-evaluation leaves: its lock, far from expiring."""
    with closing(sqlite3.connect(home / "plait.db")) as conn:
        conn.execute(
            "UPDATE trigger_states SET locked_by = 'dead-host:1:x', "
            "locked_until = '2999-01-01 00:00:00.000000' "
            "WHERE namespace = 'ev' AND flow_id = ? AND trigger_id = ?",
            (flow_id, trigger_id),
        )
        conn.commit()


async def test_a_stuck_trigger_is_unlocked_by_the_api_and_the_cli(live: LiveServer) -> None:
    await call(live, "POST", "/triggers/ev/gated/hook/unlock", expect=409)  # not locked
    _lock(live.home, "downstream", "after_upstream")
    stuck = (await triggers(live))["downstream/after_upstream"]
    assert stuck["evaluating"] is True
    assert stuck["lockedBy"] == "dead-host:1:x"
    unlocked = await call(live, "POST", "/triggers/ev/downstream/after_upstream/unlock")
    assert unlocked["evaluating"] is False
    assert unlocked["lockedBy"] is None or unlocked["lockedBy"] != "dead-host:1:x"

    _lock(live.home, "downstream", "after_upstream")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(PLAIT), "triggers", "unlock", "ev", "downstream", "after_upstream",
         "--server", live.url],
        capture_output=True, text=True, timeout=60,
        env={"PLAIT_TOKEN": live.token or "", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "unlocked" in done.stdout
    assert (await triggers(live))["downstream/after_upstream"]["lockedBy"] != "dead-host:1:x"
    await call(live, "POST", "/triggers/ev/nope/after_upstream/unlock", expect=404)
