"""parallel.fan-out-fan-in: one call per item, at most N at once, merged in Python."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State

SCORES = {"acme": 3.5, "globex": 10, "initech": 1, "umbrella": 7}


async def test_every_item_is_called_and_merged(plait: Plait, saas: Saas) -> None:
    running = {"now": 0, "most": 0}

    async def score(request: web.Request) -> web.Response:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.05)  # long enough for the calls to overlap
        running["now"] -= 1
        item = (await request.json())["item"]
        return web.json_response({"value": SCORES[item]})

    api = saas.mount({"/score": score})
    execution = await plait.blueprint(
        "parallel.fan-out-fan-in",
        {"items": json.dumps(list(SCORES)), "worker_url": api.url("/score"), "concurrency": 2},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"total": 21.5, "count": 4, "best": "globex"}
    assert sorted(c.json()["item"] for c in api.calls("/score")) == sorted(SCORES)
    assert running["most"] <= 2
