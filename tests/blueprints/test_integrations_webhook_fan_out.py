"""integrations.webhook-fan-out: three receivers verify the signature; one is down."""

from __future__ import annotations

import hashlib
import hmac
import json

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State

SECRET = "whsec-blueprint-test"


async def _down(request: web.Request) -> web.Response:
    return web.json_response({"error": "maintenance"}, status=503)


async def test_every_endpoint_gets_the_signed_event(plait: Plait, saas: Saas) -> None:
    hooks = saas.mount({"/crm": {"ok": True}, "/erp": {"ok": True}, "/down": _down})
    payload = {"order": {"id": 42, "total": 9.5}}
    execution = await plait.blueprint(
        "integrations.webhook-fan-out",
        {
            "event": "order.created",
            "payload": json.dumps(payload),
            "endpoints": json.dumps([hooks.url("/crm"), hooks.url("/erp"), hooks.url("/down")]),
            "signing_secret": SECRET,
        },
    )
    assert execution.state is State.WARNING, execution.error
    assert execution.outputs == {"delivered": 2, "failed": 1}
    for path in ("/crm", "/erp"):
        [call] = hooks.calls(path)
        assert call.json() == payload
        assert call.headers["X-Plait-Event"] == "order.created"
        expected = hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["X-Plait-Signature"] == f"sha256={expected}"
    assert len(hooks.calls("/down")) == 3  # retried
    assert SECRET not in await plait.logs(execution)
