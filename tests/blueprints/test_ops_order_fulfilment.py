"""ops.order-fulfilment: the happy path, and a refused payment releasing the stock."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State


def _shop(charge_ok: bool) -> dict[str, object]:
    async def charge(request: web.Request) -> web.Response:
        return web.json_response({"ok": charge_ok})

    return {"/reserve": {"ok": True}, "/charge": charge, "/ship": {"ok": True},
            "/release": {"ok": True}}  # fmt: skip


async def test_an_order_is_reserved_paid_and_shipped(plait: Plait, saas: Saas) -> None:
    shop = saas.mount(_shop(charge_ok=True))
    execution = await plait.blueprint(
        "ops.order-fulfilment", {"order_id": "o-1", "api_url": shop.url()}
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"state": "Shipped", "path": "Reserved -> Paid -> Shipped"}
    assert [(c.path, c.json()) for c in shop.calls()] == [
        ("/reserve", {"order": "o-1"}), ("/charge", {"order": "o-1"}), ("/ship", {"order": "o-1"}),
    ]  # fmt: skip


async def test_a_refused_payment_releases_the_stock(plait: Plait, saas: Saas) -> None:
    shop = saas.mount(_shop(charge_ok=False))
    execution = await plait.blueprint(
        "ops.order-fulfilment", {"order_id": "o-2", "api_url": shop.url()}
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"state": "Cancelled", "path": "Reserved -> Releasing -> Cancelled"}
    assert [c.path for c in shop.calls()] == ["/reserve", "/charge", "/release"]
