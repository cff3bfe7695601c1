"""Kestra's trigger API paths in a live server, with Kestra's shapes: the search's
``{abstractTrigger, triggerContext}`` pairs, a flow's triggers, ``PUT /triggers`` to disable,
the backfill's pause / unpause / delete by body, and the bulk ``by-triggers`` operations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from live_server import LiveServer, call, start_server

FLOWS = {
    "yearly.yaml": (
        "id: yearly\nnamespace: kapi\n"
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        "triggers:\n"
        '  - id: cron\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: "0 0 1 1 *"\n'
        "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n"
        "    key: kestra-api-key-0123456789\n"
    ),
    "other.yaml": (
        "id: other\nnamespace: kapi.sub\n"
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        "triggers:\n  - id: daily\n    type: io.kestra.plugin.core.trigger.Schedule\n"
        '    cron: "@daily"\n'
    ),
}
CRON = {"namespace": "kapi", "flowId": "yearly", "triggerId": "cron"}


async def seen_by_loop(live: LiveServer) -> None:
    for _ in range(200):  # the loop's first pass makes the schedules' rows
        found = await call(live, "GET", "/triggers/search", params={"namespace": "kapi"})
        if all(p["triggerContext"]["nextExecutionDate"] for p in found["results"]
               if p["abstractTrigger"]["type"].endswith("Schedule")):  # fmt: skip
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the trigger loop never saw the schedules")


async def test_kestra_trigger_paths(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / name).write_text(text)
    live = start_server(tmp_path / "home", "--deploy", str(flows))
    try:
        await seen_by_loop(live)
        found = await call(live, "GET", "/triggers/search", params={"namespace": "kapi"})
        assert found["total"] == 3
        pairs = {p["abstractTrigger"]["id"]: p for p in found["results"]}
        assert set(pairs) == {"cron", "hook", "daily"}
        cron = pairs["cron"]
        assert cron["abstractTrigger"] == {
            "id": "cron",
            "type": "plait.core.Schedule",  # the canonical name of the alias
            "disabled": False,
        }
        context = cron["triggerContext"]
        assert {k: context[k] for k in ("namespace", "flowId", "triggerId")} == CRON
        assert "-01-01T00:00:00" in context["nextExecutionDate"]
        assert context["disabled"] is False

        page = await call(live, "GET", "/triggers/search",
                          params={"namespace": "kapi", "size": "2", "page": "2"})  # fmt: skip
        assert (page["total"], len(page["results"])) == (3, 1)
        by_text = await call(live, "GET", "/triggers/search", params={"q": "DAIL"})
        assert [p["abstractTrigger"]["id"] for p in by_text["results"]] == ["daily"]

        of_flow = await call(live, "GET", "/triggers/kapi/yearly")
        assert sorted(t["triggerId"] for t in of_flow["results"]) == ["cron", "hook"]
        assert (await call(live, "GET", "/triggers/kapi/nothing"))["total"] == 0

        # PUT /triggers: Kestra's UI sends the whole trigger with `disabled` flipped.
        off = await call(live, "PUT", "/triggers", json={**context, "disabled": True})
        assert off["disabled"] is True
        plait_row = await call(live, "GET", "/triggers", params={"namespace": "kapi"})
        assert next(t for t in plait_row["results"] if t["triggerId"] == "cron")["disabled"]
        on = await call(live, "PUT", "/triggers", json={**CRON, "disabled": False})
        assert on["disabled"] is False

        # Backfill: started through Plait's path, paused / resumed / deleted through Kestra's.
        await call(live, "PUT", "/triggers/backfill/pause", json=CRON, expect=409)  # none yet
        await call(live, "POST", "/triggers/kapi/yearly/cron/backfill",
                   json={"start": "2000-01-01T00:00:00Z", "end": "2001-12-31T00:00:00Z",
                         "paused": True})  # fmt: skip
        paused = await call(live, "PUT", "/triggers/backfill/pause", json=CRON)
        assert paused["backfill"]["paused"] is True
        assert paused["backfill"]["start"].startswith("2000-01-01")
        resumed = await call(live, "PUT", "/triggers/backfill/unpause", json=CRON)
        assert resumed["backfill"]["paused"] is False
        deleted = await call(live, "POST", "/triggers/backfill/delete", json=CRON)
        assert deleted["backfill"] is None  # cancelled: no backfill under way any more
        await call(live, "POST", "/triggers/backfill/delete", json=CRON, expect=409)

        # Bulk operations, all or nothing.
        refs = [CRON, {"namespace": "kapi.sub", "flowId": "other", "triggerId": "daily"}]
        done = await call(live, "POST", "/triggers/set-disabled/by-triggers",
                          json={"triggers": refs, "disabled": True})  # fmt: skip
        assert done == {"count": 2}
        missing = {"namespace": "kapi", "flowId": "yearly", "triggerId": "nope"}
        both = {"triggers": [refs[0], missing], "disabled": False}
        await call(live, "POST", "/triggers/set-disabled/by-triggers", json=both, expect=404)
        still: Any = await call(live, "GET", "/triggers/search", params={"namespace": "kapi"})
        disabled = {p["abstractTrigger"]["id"]: p["triggerContext"]["disabled"]
                    for p in still["results"]}  # fmt: skip
        assert disabled == {"cron": True, "hook": False, "daily": True}
        assert await call(live, "POST", "/triggers/unlock/by-triggers", json=refs) == {"count": 0}

        # Kestra's single-trigger unlock is Plait's own path: 409 when not locked.
        await call(live, "POST", "/triggers/kapi/yearly/cron/unlock", expect=409)
        # Bad bodies are one clear error, not a traceback.
        bad = await call(live, "PUT", "/triggers", json={"namespace": "kapi"}, expect=422)
        assert "flowId" in str(bad)
        viewer_cannot = await call(live, "GET", "/triggers/search", token="wrong", expect=401)
        assert viewer_cannot
    finally:
        assert live.stop() == 0
