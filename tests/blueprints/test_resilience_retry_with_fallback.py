"""resilience.retry-with-fallback: a flaky primary recovers; a dead one falls back."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State


def _flaky(failures: int) -> object:
    calls = {"n": 0}

    async def answer(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= failures:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"rate": 1.08})

    return answer


async def test_a_flaky_primary_is_retried(plait: Plait, saas: Saas) -> None:
    api = saas.mount({"/primary": _flaky(1), "/fallback": {"rate": 1.0}})
    execution = await plait.blueprint(
        "resilience.retry-with-fallback",
        {"primary_url": api.url("/primary"), "fallback_url": api.url("/fallback")},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"source": "primary", "body": {"rate": 1.08}}
    assert len(api.calls("/primary")) == 2
    assert api.calls("/fallback") == []


async def test_a_dead_primary_falls_back(plait: Plait, saas: Saas) -> None:
    api = saas.mount({"/primary": _flaky(99), "/fallback": {"rate": 1.0}})
    execution = await plait.blueprint(
        "resilience.retry-with-fallback",
        {"primary_url": api.url("/primary"), "fallback_url": api.url("/fallback")},
    )
    assert execution.state in (State.SUCCESS, State.WARNING), execution.error
    assert execution.outputs == {"source": "fallback", "body": {"rate": 1.0}}
    assert len(api.calls("/primary")) == 3
    assert len(api.calls("/fallback")) == 1
