"""triggers.slack-slash-command on a live server: Slack's url_verification answered, a slash
command signed as Slack's SDK signs it acknowledged at once, and the reply (with the status
page read) received on its response_url by a Slack stand-in on loopback; a forged or stale
signature starts nothing."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from blueprint_harness import SLACK_SIGNING_SECRET, ended, post_hook
from slack_sdk.signature import SignatureVerifier


def _signed(body: bytes, content_type: str, at: int | None = None) -> dict[str, str]:
    stamp = str(at if at is not None else int(time.time()))
    signature = SignatureVerifier(SLACK_SIGNING_SECRET).generate_signature(
        timestamp=stamp, body=body.decode()
    )
    assert signature is not None
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
            "Content-Type": content_type}  # fmt: skip


def _command(slack: Any, text: str) -> bytes:
    return urlencode({
        "token": "legacy-unused", "team_id": "T0001", "channel_id": "C2147483705",
        "user_id": "U2147483697", "user_name": "ada", "command": "/ops", "text": text,
        "response_url": slack.url("/respond"), "trigger_id": "13345224609.7384749",
    }).encode()  # fmt: skip


async def test_slack_url_verification_is_answered(hooks: Any) -> None:
    live, keys, _slack, _table = hooks
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2r"}).encode()
    status, answer = await post_hook(live, "slash", keys["slash"], body,
                                     _signed(body, "application/json"))  # fmt: skip
    assert (status, answer) == (200, {"challenge": "3eZbrw1aBm2r"})


async def test_a_signed_slash_command_is_acknowledged_and_answered(hooks: Any) -> None:
    live, keys, slack, _table = hooks
    form = "application/x-www-form-urlencoded"
    forged = _command(slack, "status")
    headers = _signed(forged, form)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert (await post_hook(live, "slash", keys["slash"], forged, headers))[0] == 401
    stale = _command(slack, "status")
    old = _signed(stale, form, at=int(time.time()) - 10 * 60)
    assert (await post_hook(live, "slash", keys["slash"], stale, old))[0] == 401

    body = _command(slack, "status")
    assert SignatureVerifier(SLACK_SIGNING_SECRET).is_valid_request(body, _signed(body, form))
    status, ack = await post_hook(live, "slash", keys["slash"], body, _signed(body, form))
    assert (status, ack) == (200, {"response_type": "ephemeral",
                                   "text": "Working on `/ops status`..."})  # fmt: skip
    unknown = _command(slack, "what")
    status, _ = await post_hook(live, "slash", keys["slash"], unknown, _signed(unknown, form))
    assert status == 200
    executions = await ended(live, "slash", 2)
    assert len(executions) == 2
    assert {e["state"]["current"] for e in executions} == {"SUCCESS"}
    replies = sorted(c.json()["text"] for c in slack.calls("/respond"))
    assert replies == [
        "<@U2147483697> Status: Partially Degraded Service",
        "<@U2147483697> Usage: `/ops status` shows the status page; `/ops help` this help.",
    ]
    assert {c.json()["response_type"] for c in slack.calls("/respond")} == {"in_channel"}
    assert len(slack.calls("/status.json")) == 1
