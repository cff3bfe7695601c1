"""triggers.stripe-payment-to-postgres on a live server: Stripe-signed events (the stripe
library signs them), a row in the real PostgreSQL, other events ignored."""

from __future__ import annotations

import json
import time
from typing import Any

import stripe
from blueprint_harness import STRIPE_SECRET, Database, post_hook


def _stripe_header(payload: str) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload, STRIPE_SECRET, timestamp=int(time.time())
    )
    return header


async def test_a_signed_stripe_payment_becomes_a_row(hooks: Any, pg: Database) -> None:
    live, keys, _slack, table = hooks
    event = {
        "id": "evt_bp_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_123", "amount": 4200, "currency": "eur",
                            "customer": "cus_9", "created": 1714557600}},
    }  # fmt: skip
    payload = json.dumps(event)
    header = _stripe_header(payload)
    status, answer = await post_hook(live, "payments", keys["payments"], payload.encode(),
                                 {"Stripe-Signature": header})  # fmt: skip
    assert status == 200, answer
    assert answer["outputs"] == {"recorded": True}
    columns = "payment_intent, amount, currency, customer, created_unix, event_id"
    rows = pg.sql(f"SELECT {columns} FROM {table}")
    assert rows == [("pi_123", 4200, "EUR", "cus_9", 1714557600, "evt_bp_1")]
    other = json.dumps({"id": "evt_bp_2", "type": "customer.created", "data": {"object": {}}})
    status, answer = await post_hook(live, "payments", keys["payments"], other.encode(),
                                 {"Stripe-Signature": _stripe_header(other)})  # fmt: skip
    assert status == 200
    assert answer["outputs"] == {"recorded": False}
    assert pg.sql(f"SELECT count(*) FROM {table}") == [(1,)]
