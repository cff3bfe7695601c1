"""triggers.github-push-to-slack on a live server: a real GitHub-signed push, the message
received by a Slack stand-in on loopback; a forged signature starts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from blueprint_harness import GITHUB_SECRET, ended, post_hook

PUSH = {
    "ref": "refs/heads/main",
    "compare": "https://github.com/acme/shop/compare/abc...def",
    "pusher": {"name": "ada"},
    "repository": {"full_name": "acme/shop"},
    "commits": [{"id": "def"}, {"id": "abc"}],
    "head_commit": {"message": "Fix the totals\n\nLong explanation"},
}


async def test_a_signed_github_push_posts_to_slack(hooks: Any) -> None:
    live, keys, slack, _table = hooks
    body = json.dumps(PUSH).encode()
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    forged, _ = await post_hook(live, "push", keys["push"], body,
                            {"X-Hub-Signature-256": "sha256=" + "0" * 64})  # fmt: skip
    assert forged == 401
    status, _ = await post_hook(live, "push", keys["push"], body, {
        "X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Delivery": str(uuid.uuid4()),
    })  # fmt: skip
    assert status == 200
    [execution] = await ended(live, "push", 1)
    assert execution["state"]["current"] == "SUCCESS"
    [message] = slack.calls("/slack")
    assert message.json() == {
        "text": "ada pushed 2 commit(s) to acme/shop:main: Fix the totals "
        "<https://github.com/acme/shop/compare/abc...def>"
    }
