"""The trigger loop in a live server: an every-second six-field cron fires every tick once,
across a restart too; /api/v1/triggers and `plait triggers list` show its state; disabling a
trigger stops it (a disabled webhook answers 404)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from live_server import PLAIT, LiveServer, call, start_server

KEY = "live-key-0123456789"
FLOW = f"""id: every_second
namespace: live
tasks:
  - id: log
    type: plait.core.Log
    message: "{{{{ trigger.date }}}}"
triggers:
  - id: tick
    type: plait.core.Schedule
    cron: "* * * * * *"
  - id: hook
    type: plait.core.Webhook
    key: {KEY}
"""


async def ticks(live: LiveServer) -> list[str]:
    found = await call(
        live,
        "GET",
        "/executions/search",
        params={"namespace": "live", "flowId": "every_second", "size": "500"},
    )
    return [e["id"] for e in found["results"]]


async def dates(live: LiveServer) -> list[datetime]:
    out = []
    for execution_id in await ticks(live):
        found = await call(live, "GET", f"/executions/{execution_id}")
        logs = await call(live, "GET", f"/logs/{execution_id}")
        if found["state"]["current"] != "SUCCESS" or not logs:
            continue
        out.append(datetime.fromisoformat(logs[0]["message"]))
    return sorted(out)


async def wait_for(live: LiveServer, count: int) -> None:
    for _ in range(600):
        if len(await ticks(live)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} ticks fired")


async def triggers(live: LiveServer) -> dict[str, dict[str, Any]]:
    found = await call(live, "GET", "/triggers", params={"namespace": "live"})
    return {t["triggerId"]: t for t in found["results"]}


async def test_every_second_cron_fires_each_tick_once_across_a_restart(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "every_second.yaml").write_text(FLOW)
    home = tmp_path / "home"
    live = start_server(home, "--deploy", str(flows))
    token = live.token
    try:
        await wait_for(live, 3)
        state = (await triggers(live))["tick"]
        assert state["type"] == "plait.core.Schedule"
        assert state["nextDate"] is not None
        assert state["lastExecutionId"] is not None
        assert state["lastError"] is None
        assert (await triggers(live))["hook"]["nextDate"] is None
    finally:
        assert live.stop() == 0
    # Down for a moment; the ticks missed meanwhile are fired once each at the start (ALL).
    await asyncio.sleep(1.5)
    live = start_server(home, "--deploy", str(flows))
    live.token = token
    try:
        before = len(await ticks(live))
        await wait_for(live, before + 2)
        await asyncio.sleep(0.5)
        seen = await dates(live)
        assert len(seen) == len(set(seen)), "a tick fired twice"
        steps = {(b - a).total_seconds() for a, b in itertools.pairwise(seen)}
        assert steps == {1.0}, f"ticks missing or doubled: {seen}"

        # The CLI shows the same state.
        shown = await asyncio.to_thread(
            subprocess.run,
            [str(PLAIT), "triggers", "list", "--server", live.url, "--json", "-n", "live"],
            capture_output=True, text=True, check=True, timeout=60,
            env={"PLAIT_TOKEN": token or "", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        listed = {t["triggerId"]: t for t in json.loads(shown.stdout)}
        assert listed["tick"]["nextDate"] is not None
        assert listed["tick"]["disabled"] is False

        # Disabled: the schedule stops firing, the webhook answers 404; enabled: both again.
        await call(live, "POST", "/triggers/live/every_second/tick/disable")
        await call(live, "POST", "/triggers/live/every_second/hook/disable")
        assert (await triggers(live))["tick"]["disabled"] is True
        stopped_at = len(await ticks(live))
        url = f"{live.api}/executions/webhook/live/every_second/{KEY}"
        async with aiohttp.ClientSession() as session, session.post(url, data=b"x") as r:
            assert r.status == 404
        await asyncio.sleep(2.5)
        assert len(await ticks(live)) <= stopped_at + 1  # at most one pass was under way
        await call(live, "POST", "/triggers/live/every_second/hook/enable")
        async with aiohttp.ClientSession() as session, session.post(url, data=b"x") as r:
            assert r.status == 200
    finally:
        assert live.stop() == 0
