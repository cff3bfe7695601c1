"""monitoring.url-health-check: real URLs on loopback, some down; the summary is posted."""

from __future__ import annotations

import json
import socket

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State


async def _broken(request: web.Request) -> web.Response:
    return web.json_response({"error": "boom"}, status=500)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


async def test_down_urls_are_reported(plait: Plait, saas: Saas) -> None:
    site = saas.mount({"/ok": {"status": "UP"}, "/broken": _broken, "/report": {"ok": True}})
    dead = f"http://127.0.0.1:{_closed_port()}/health"
    urls = [site.url("/ok"), site.url("/broken"), dead]
    execution = await plait.blueprint(
        "monitoring.url-health-check",
        {"urls": json.dumps(urls), "report_url": site.url("/report"), "timeout_seconds": 5},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs["up"] == 1
    down = execution.outputs["down"]
    assert [d["url"] for d in down] == [site.url("/broken"), dead]
    assert down[0]["status"] == 500
    assert "ConnectionRefused" in down[1]["error"] or "refused" in down[1]["error"]
    [report] = site.calls("/report")
    assert report.json()["text"] == "2 of 3 URL(s) down"
    assert report.json()["down"] == down


async def test_nothing_is_posted_when_everything_is_up(plait: Plait, saas: Saas) -> None:
    site = saas.mount({"/ok": {"status": "UP"}, "/report": {"ok": True}})
    execution = await plait.blueprint(
        "monitoring.url-health-check",
        {"urls": json.dumps([site.url("/ok")] * 2), "report_url": site.url("/report")},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"up": 2, "down": []}
    assert site.calls("/report") == []
