"""Webhook triggers over real HTTP against a live server: signatures made by the senders' own
libraries (stripe, slack_sdk, standardwebhooks) and GitHub's documented example, replays,
the one 404 for everything unknown, body limits, what the flow sees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import stripe
from live_server import LiveServer, call, start_server
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook as StandardWebhook

KEY = "k3y-0123456789abcdef"
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
STRIPE_SECRET = "whsec_stripe_test_secret"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard webhooks test key 32byt").decode()
HMAC_SECRET = "generic-hmac-secret"

SECRETS = {
    "GH": GITHUB_SECRET,
    "STRIPE": STRIPE_SECRET,
    "SLACK": SLACK_SECRET,
    "STD": STANDARD_SECRET,
    "HMAC": HMAC_SECRET,
}


def _flow(flow_id: str, trigger: str, *, fail: bool = False, disabled: bool = False) -> str:
    task = (
        "  - id: boom\n    type: plait.core.Fail\n    errorMessage: no\n"
        if fail
        else '  - id: seen\n    type: plait.core.Return\n    format: "{{ trigger.body | json }}"\n'
    )
    return (
        f"id: {flow_id}\nnamespace: hooks\n"
        + ("disabled: true\n" if disabled else "")
        + "tasks:\n"
        + task
        + "outputs:\n"
        + '  - id: body\n    type: JSON\n    value: "{{ trigger.body | json }}"\n'
        + '  - id: headers\n    type: JSON\n    value: "{{ trigger.headers | json }}"\n'
        + '  - id: parameters\n    type: JSON\n    value: "{{ trigger.parameters | json }}"\n'
        + "triggers:\n  - id: hook\n    type: plait.core.Webhook\n"
        + f"    key: {KEY}\n"
        + trigger
    )


FLOWS = {
    "plain": _flow("plain", "    wait: true\n    maxBodyBytes: 2048\n"),
    "nowait": _flow("nowait", ""),
    "limited": _flow("limited", "    rateLimit: 0.001\n    rateBurst: 2\n"),
    "failing": _flow("failing", "    wait: true\n", fail=True),
    "off": _flow("off", "", disabled=True),
    "github": _flow(
        "github", "    wait: true\n    verify:\n      provider: github\n      secret: GH\n"
    ),
    "stripe": _flow(
        "stripe", "    wait: true\n    verify:\n      provider: stripe\n      secret: STRIPE\n"
    ),
    "slack": _flow(
        "slack", "    wait: true\n    verify:\n      provider: slack\n      secret: SLACK\n"
    ),
    "standard": _flow(
        "standard",
        "    wait: true\n    verify:\n      provider: standard-webhooks\n      secret: STD\n",
    ),
    "generic": _flow(
        "generic",
        "    wait: true\n    verify:\n      provider: hmac\n      secret: HMAC\n"
        "      header: X-Signature\n      encoding: base64\n      prefix: 'sha512='\n"
        "      algorithm: sha512\n      timestampHeader: X-Timestamp\n"
        "      deliveryIdHeader: X-Request-Id\n",
    ),
    "missing_secret": _flow(
        "missing_secret", "    verify:\n      provider: github\n      secret: NOT_SET\n"
    ),
}


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("webhooks")
    flows = root / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / f"{name}.yaml").write_text(text)
    env = {f"PLAIT_SECRET_{k}": base64.b64encode(v.encode()).decode() for k, v in SECRETS.items()}
    server = start_server(root / "home", "--deploy", str(flows), env=env)
    try:
        yield server
    finally:
        server.stop()


async def post(
    live: LiveServer,
    flow_id: str,
    body: bytes = b"",
    *,
    key: str = KEY,
    method: str = "POST",
    namespace: str = "hooks",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    url = f"{live.api}/executions/webhook/{namespace}/{flow_id}/{key}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers or {}, params=params) as response,
    ):
        text = await response.text()
        assert "Traceback" not in text
        return response.status, (json.loads(text) if "json" in response.content_type else text)


async def executions_of(live: LiveServer, flow_id: str) -> list[dict[str, Any]]:
    found = await call(
        live, "GET", "/executions/search", params={"namespace": "hooks", "flowId": flow_id}
    )
    return found["results"]  # type: ignore[no-any-return]


async def metric(live: LiveServer, outcome: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(live.url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(f'plait_webhook_requests_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


# -- what the flow sees ---------------------------------------------------------------------------


async def test_json_body_headers_and_query_reach_the_flow_without_a_token(
    hooks: LiveServer,
) -> None:
    status, answer = await post(
        hooks,
        "plain",
        b'{"name": "Ada", "n": [1, 2]}',
        headers={
            "Content-Type": "application/json",
            "X-Event": "push",
            "Authorization": "Bearer not-for-the-flow",
        },
        params={"ref": "main"},
    )
    assert status == 200, answer
    assert answer["state"]["current"] == "SUCCESS"
    assert answer["trigger"] == {"id": "hook", "type": "plait.core.Webhook"}
    outputs = answer["outputs"]
    assert outputs["body"] == {"name": "Ada", "n": [1, 2]}
    assert outputs["headers"]["x-event"] == ["push"]
    assert "authorization" not in outputs["headers"]
    assert outputs["parameters"] == {"ref": ["main"]}


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_get_and_put_start_the_flow_too(hooks: LiveServer, method: str) -> None:
    body = b"" if method == "GET" else b"plain text"
    status, answer = await post(hooks, "plain", body, method=method, params={"a": "1"})
    assert status == 200, answer
    assert answer["outputs"]["body"] == (None if method == "GET" else "plain text")


async def test_form_body_is_a_map(hooks: LiveServer) -> None:
    status, answer = await post(
        hooks,
        "plain",
        b"a=1&b=two&b=three",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, answer
    assert answer["outputs"]["body"] == {"a": "1", "b": ["two", "three"]}


async def test_without_wait_the_answer_is_the_new_execution_at_once(hooks: LiveServer) -> None:
    status, answer = await post(
        hooks, "nowait", b"{}", headers={"Content-Type": "application/json"}
    )
    assert status == 200, answer
    assert answer["id"]
    assert "outputs" not in answer
    found = await call(hooks, "GET", f"/executions/{answer['id']}")
    assert found["flowId"] == "nowait"


async def test_a_failed_flow_answers_500_when_waited_for(hooks: LiveServer) -> None:
    status, answer = await post(hooks, "failing", b"x")
    assert status == 500
    assert answer["state"]["current"] == "FAILED"


# -- 404 alike, limits ----------------------------------------------------------------------------


async def test_wrong_key_unknown_flow_and_disabled_flow_answer_the_same_404(
    hooks: LiveServer,
) -> None:
    answers = [
        await post(hooks, "plain", b"x", key="wrong-key-0123456789"),
        await post(hooks, "nope", b"x"),
        await post(hooks, "off", b"x"),
        await post(hooks, "plain", b"x", namespace="other"),
        await post(hooks, "plain", b"x", key="x" * 300),
    ]
    for status, body in answers:
        assert status == 404
        assert {k: v for k, v in body.items() if k != "errorId"} == {
            "message": "not found",
            "problems": [],
            "status": 404,
        }
    assert not await executions_of(hooks, "off")


async def test_a_body_over_the_trigger_limit_is_413_and_starts_nothing(hooks: LiveServer) -> None:
    before = len(await executions_of(hooks, "plain"))
    status, _ = await post(hooks, "plain", b"x" * 4096)
    assert status == 413
    assert len(await executions_of(hooks, "plain")) == before


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(hooks: LiveServer) -> None:
    statuses = [(await post(hooks, "limited", b"x"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    url = f"{hooks.api}/executions/webhook/hooks/limited/{KEY}"
    async with aiohttp.ClientSession() as session, session.post(url, data=b"x") as r:
        assert r.status == 429
        assert int(r.headers["Retry-After"]) > 0
    assert len(await executions_of(hooks, "limited")) == 2


async def test_other_api_routes_still_need_a_token(hooks: LiveServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(hooks.api + "/flows/search") as r:
        assert r.status == 401


async def test_a_missing_signing_secret_is_a_server_side_error_with_no_execution(
    hooks: LiveServer,
) -> None:
    status, body = await post(hooks, "missing_secret", b"x")
    assert status == 500
    assert "NOT_SET" not in json.dumps(body)
    assert not await executions_of(hooks, "missing_secret")


# -- GitHub ---------------------------------------------------------------------------------------


async def test_github_documented_example_signature_is_accepted(hooks: LiveServer) -> None:
    status, answer = await post(
        hooks,
        "github",
        GITHUB_BODY,
        headers={
            "X-Hub-Signature-256": f"sha256={GITHUB_SIGNATURE}",
            "X-GitHub-Delivery": "doc-example-1",
            "Content-Type": "text/plain",
        },
    )
    assert status == 200, answer
    assert answer["outputs"]["body"] == "Hello, World!"


@pytest.mark.parametrize(
    ("headers", "outcome"),
    [
        ({}, "missing"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "forged"),
        ({"X-Hub-Signature-256": "sha1=" + GITHUB_SIGNATURE}, "forged"),
        ({"X-Hub-Signature-256": "sha256=" + GITHUB_SIGNATURE[:-2]}, "forged"),
        ({"X-Hub-Signature-256": "sha256=" + "é" * 10}, "forged"),
    ],
)
async def test_github_unsigned_or_forged_is_a_bare_401_and_counted(
    hooks: LiveServer, headers: dict[str, str], outcome: str
) -> None:
    before_count = len(await executions_of(hooks, "github"))
    before = await metric(hooks, outcome)
    status, body = await post(hooks, "github", GITHUB_BODY, headers=headers)
    assert status == 401
    assert body["message"] == "unauthorized"
    assert await metric(hooks, outcome) == before + 1
    assert len(await executions_of(hooks, "github")) == before_count


async def test_github_body_changed_after_signing_is_refused(hooks: LiveServer) -> None:
    status, _ = await post(
        hooks,
        "github",
        b"Hello, World?",
        headers={"X-Hub-Signature-256": f"sha256={GITHUB_SIGNATURE}"},
    )
    assert status == 401


async def test_github_redelivery_starts_no_second_execution_and_answers_as_the_first(
    hooks: LiveServer,
) -> None:
    body = b'{"ref": "refs/heads/main"}'
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={signature}",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "Content-Type": "application/json",
    }
    before = len(await executions_of(hooks, "github"))
    first_status, first = await post(hooks, "github", body, headers=headers)
    again_status, again = await post(hooks, "github", body, headers=headers)
    assert first_status == again_status == 200
    assert again["id"] == first["id"]
    assert (
        again["outputs"]
        == first["outputs"]
        == {
            "body": {"ref": "refs/heads/main"},
            "headers": first["outputs"]["headers"],
            "parameters": {},
        }
    )
    assert len(await executions_of(hooks, "github")) == before + 1
    assert await metric(hooks, "duplicate") >= 1


async def test_github_capture_resent_with_a_new_delivery_id_is_still_a_replay(
    hooks: LiveServer,
) -> None:
    # X-GitHub-Delivery is not signed and GitHub signs no timestamp: an attacker who captured
    # a request can change the id, so the signed body itself is remembered too.
    body = b'{"ref": "refs/heads/captured"}'
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    sent = {"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Delivery": "original"}
    before = len(await executions_of(hooks, "github"))
    _, first = await post(hooks, "github", body, headers=sent)
    forged_id = {"X-Hub-Signature-256": f"sha256={signature.upper()}", "X-GitHub-Delivery": "new"}
    status, again = await post(hooks, "github", body, headers=forged_id)
    assert (status, again["id"]) == (200, first["id"])
    status, no_id = await post(
        hooks, "github", body, headers={"X-Hub-Signature-256": sent["X-Hub-Signature-256"]}
    )
    assert (status, no_id["id"]) == (200, first["id"])
    assert len(await executions_of(hooks, "github")) == before + 1


# -- Stripe ---------------------------------------------------------------------------------------


def _stripe_header(payload: str, *, at: int | None = None, extra_v1: str | None = None) -> str:
    stamp = at if at is not None else int(time.time())
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload, STRIPE_SECRET, timestamp=stamp
    )
    return header + (f",v1={extra_v1}" if extra_v1 else "")


async def test_stripe_signature_made_by_the_stripe_library_is_accepted(hooks: LiveServer) -> None:
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"})
    # Stripe sends several v1 signatures while a secret is rolled: any one may match.
    header = _stripe_header(payload, extra_v1="ab" * 32)
    status, answer = await post(
        hooks,
        "stripe",
        payload.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert status == 200, answer
    assert answer["outputs"]["body"]["type"] == "payment_intent.succeeded"
    # The library itself agrees with what was accepted.
    stripe.WebhookSignature.verify_header(payload, header, STRIPE_SECRET, tolerance=300)


async def test_stripe_replayed_event_id_starts_nothing(hooks: LiveServer) -> None:
    payload = json.dumps({"id": "evt_replayed", "type": "charge.succeeded"})
    before = len(await executions_of(hooks, "stripe"))
    answers = []
    for _ in range(2):  # a new signature each time, as Stripe's retries have
        headers = {"Stripe-Signature": _stripe_header(payload), "Content-Type": "application/json"}
        answers.append(await post(hooks, "stripe", payload.encode(), headers=headers))
    assert answers[0][1]["id"] == answers[1][1]["id"]
    assert len(await executions_of(hooks, "stripe")) == before + 1


async def test_stripe_timestamp_outside_300s_is_stale(hooks: LiveServer) -> None:
    payload = json.dumps({"id": "evt_old"})
    before = await metric(hooks, "stale")
    header = _stripe_header(payload, at=int(time.time()) - 301)
    status, _ = await post(hooks, "stripe", payload.encode(), headers={"Stripe-Signature": header})
    assert status == 401
    assert await metric(hooks, "stale") == before + 1


async def test_stripe_signature_under_another_secret_is_forged(hooks: LiveServer) -> None:
    payload = json.dumps({"id": "evt_x"})
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_other")
    status, _ = await post(hooks, "stripe", payload.encode(), headers={"Stripe-Signature": header})
    assert status == 401


# -- Slack ----------------------------------------------------------------------------------------


def _slack_headers(body: bytes, at: int | None = None) -> dict[str, str]:
    stamp = str(at if at is not None else int(time.time()))
    verifier = SignatureVerifier(SLACK_SECRET)
    signature = verifier.generate_signature(timestamp=stamp, body=body.decode())
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


async def test_slack_signature_and_url_verification_challenge(hooks: LiveServer) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2"})
    before = len(await executions_of(hooks, "slack"))
    status, answer = await post(
        hooks, "slack", challenge.encode(), headers=_slack_headers(challenge.encode())
    )
    assert (status, answer) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2"})
    assert len(await executions_of(hooks, "slack")) == before

    event = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"text": "hi"}})
    status, answer = await post(
        hooks, "slack", event.encode(), headers=_slack_headers(event.encode())
    )
    assert status == 200, answer
    assert answer["outputs"]["body"]["event"] == {"text": "hi"}
    headers = _slack_headers(event.encode())
    assert SignatureVerifier(SLACK_SECRET).is_valid_request(event, headers)


async def test_slack_request_older_than_five_minutes_is_refused(hooks: LiveServer) -> None:
    body = b'{"type": "event_callback", "event_id": "Ev2"}'
    headers = _slack_headers(body, at=int(time.time()) - 6 * 60)
    status, _ = await post(hooks, "slack", body, headers=headers)
    assert status == 401


async def test_slack_challenge_without_a_signature_is_refused(hooks: LiveServer) -> None:
    status, _ = await post(
        hooks, "slack", b'{"type": "url_verification", "challenge": "c"}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 401


# -- Standard Webhooks ----------------------------------------------------------------------------


async def test_standard_webhooks_signature_from_its_library_and_replay(hooks: LiveServer) -> None:
    payload = json.dumps({"type": "invoice.paid", "amount": 42})
    signer = StandardWebhook(STANDARD_SECRET)
    now = datetime.now(tz=UTC)
    headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, payload),
        "Content-Type": "application/json",
    }
    signer.verify(payload, headers)
    before = len(await executions_of(hooks, "standard"))
    status, first = await post(hooks, "standard", payload.encode(), headers=headers)
    assert status == 200, first
    assert first["outputs"]["body"] == {"type": "invoice.paid", "amount": 42}
    status, again = await post(hooks, "standard", payload.encode(), headers=headers)
    assert (status, again["id"]) == (200, first["id"])
    assert len(await executions_of(hooks, "standard")) == before + 1

    old = datetime.fromtimestamp(now.timestamp() - 600, tz=UTC)
    stale = {
        **headers,
        "webhook-id": "msg_old",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": signer.sign("msg_old", old, payload),
    }
    status, _ = await post(hooks, "standard", payload.encode(), headers=stale)
    assert status == 401


# -- generic HMAC ---------------------------------------------------------------------------------


def _generic_headers(body: bytes, stamp: int, request_id: str) -> dict[str, str]:
    message = str(stamp).encode() + b"." + body
    digest = hmac.new(HMAC_SECRET.encode(), message, hashlib.sha512).digest()
    return {
        "X-Signature": "sha512=" + base64.b64encode(digest).decode(),
        "X-Timestamp": str(stamp),
        "X-Request-Id": request_id,
    }


async def test_generic_hmac_base64_prefix_timestamp_and_configured_delivery_header(
    hooks: LiveServer,
) -> None:
    body = b"payload"
    now = int(time.time())
    status, first = await post(hooks, "generic", body, headers=_generic_headers(body, now, "r1"))
    assert status == 200, first
    status, again = await post(hooks, "generic", body, headers=_generic_headers(body, now, "r1"))
    assert again["id"] == first["id"]
    status, other = await post(hooks, "generic", body, headers=_generic_headers(body, now, "r2"))
    assert other["id"] != first["id"]
    stale = _generic_headers(body, now - 3600, "r3")
    assert (await post(hooks, "generic", body, headers=stale))[0] == 401
    forged = {**_generic_headers(body, now, "r4"), "X-Timestamp": str(now + 1)}
    assert (await post(hooks, "generic", body, headers=forged))[0] == 401


def test_a_bad_verify_block_is_a_flow_validation_error() -> None:
    from plait.flows import load_flow
    from plait.runtime import plugin_host

    registry = plugin_host().registry
    load_flow(FLOWS["generic"], registry=registry)
    bad = FLOWS["plain"].replace(
        "    wait: true\n", "    verify:\n      provider: hmac\n      secret: S\n"
    )
    with pytest.raises(Exception, match=r"verify\.header is required"):
        load_flow(bad, registry=registry)
    short_key = FLOWS["plain"].replace(KEY, "short")
    with pytest.raises(Exception, match="key"):
        load_flow(short_key, registry=registry)
