"""http.rate-limited-bulk: calls paced under the limit, a 429 waited out, a refusal reported."""

from __future__ import annotations

import itertools
import json

from aiohttp import web
from blueprint_harness import Plait, Saas, task_run
from plait.flows import State


async def test_items_are_paced_retried_and_failures_reported(plait: Plait, saas: Saas) -> None:
    seen: dict[int, int] = {}

    async def contacts(request: web.Request) -> web.Response:
        item = await request.json()
        seen[item["n"]] = seen.get(item["n"], 0) + 1
        if item["n"] == 2 and seen[2] == 1:
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": "0.2"})  # fmt: skip
        if item["n"] == 4:
            return web.json_response({"error": "invalid email"}, status=422)
        return web.json_response({"ok": True}, status=201)

    api = saas.mount({"/contacts": contacts})
    items = [{"n": n} for n in range(1, 6)]
    execution = await plait.blueprint(
        "http.rate-limited-bulk",
        {"items": json.dumps(items), "url": api.url("/contacts"), "token": "tk", "per_second": 10},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert (execution.outputs["sent"], execution.outputs["failed"]) == (4, 1)
    failures = (await plait.read(execution.outputs["failures"])).decode().splitlines()
    assert [json.loads(line) for line in failures] == [{"item": {"n": 4}, "status": 422}]
    calls = api.calls("/contacts")
    assert [c.json()["n"] for c in calls] == [1, 2, 2, 3, 4, 5]
    assert {c.headers["Authorization"] for c in calls} == {"Bearer tk"}
    # Paced, as the script's own clock saw the calls start (never a wall-time threshold of
    # this machine): at least 1/per_second apart, and the Retry-After waited out after the 429.
    starts = task_run(execution, "send").outputs["vars"]["starts"]
    assert len(starts) == len(calls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 - 1e-9
    assert gaps[1] >= 0.2 - 1e-9  # the second call of item 2 came after the Retry-After
