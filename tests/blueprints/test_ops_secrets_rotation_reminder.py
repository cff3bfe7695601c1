"""ops.secrets-rotation-reminder: secrets set through a live server's API, some aged in its
store (their last update moved back, as months passing would); the blueprint reads the
metadata from that API and the reminder lists exactly the old ones on a loopback webhook."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from blueprint_harness import Plait, Saas
from live_server import call
from plait.flows import State


async def test_old_secrets_are_listed_in_a_reminder(hooks: Any, plait: Plait, saas: Saas) -> None:
    live = hooks[0]
    vault, other = f"company.vault{uuid.uuid4().hex[:6]}", f"company.ci{uuid.uuid4().hex[:6]}"
    for namespace, key in ((vault, "STRIPE_API_KEY"), (vault, "DB_PASSWORD"),
                           (vault, "NEW_TOKEN"), (other, "DEPLOY_KEY")):  # fmt: skip
        await call(live, "PUT", f"/namespaces/{namespace}/secrets",
                   json={"key": key, "value": f"value-of-{key}"})  # fmt: skip
    aged = {(vault, "STRIPE_API_KEY"): "2020-01-01 00:00:00.000000",
            (vault, "DB_PASSWORD"): "2020-06-01 00:00:00.000000",
            (other, "DEPLOY_KEY"): "2021-01-01 00:00:00.000000"}  # fmt: skip
    with sqlite3.connect(live.home / "plait.db") as db:
        for (namespace, key), when in aged.items():
            done = db.execute("UPDATE secrets SET updated = ? WHERE namespace = ? AND name = ?",
                              (when, namespace, key))  # fmt: skip
            assert done.rowcount == 1
    hook = saas.mount({"/hook": {"ok": True}})
    await plait.store.set("company.team", "PLAIT_API_TOKEN", live.token or "")
    await plait.store.set("company.team", "ROTATION_WEBHOOK_URL", hook.url("/hook"))

    execution = await plait.blueprint(
        "ops.secrets-rotation-reminder",
        {"plait_url": live.url, "namespaces": f'["{vault}", "{other}"]', "max_age_days": 30},
    )
    assert execution.state is State.SUCCESS, execution.error
    due = execution.outputs["due"]
    assert [(d["namespace"], d["key"]) for d in due] == [
        (vault, "DB_PASSWORD"), (vault, "STRIPE_API_KEY"), (other, "DEPLOY_KEY"),
    ]  # fmt: skip
    assert all(d["age_days"] > 365 for d in due)
    assert execution.outputs["checked"] == 4
    [reminder] = hook.calls("/hook")
    body = reminder.json()
    assert body["severity"] == "warning"
    assert body["text"].startswith("Rotate: 3 secret(s) older than 30 days: ")
    assert f"{vault}/DB_PASSWORD (" in body["text"]
    assert "NEW_TOKEN" not in body["text"]
    assert "value-of" not in body["text"]


async def test_fresh_secrets_post_nothing(hooks: Any, plait: Plait, saas: Saas) -> None:
    live = hooks[0]
    namespace = f"company.fresh{uuid.uuid4().hex[:6]}"
    await call(live, "PUT", f"/namespaces/{namespace}/secrets",
               json={"key": "API_KEY", "value": "v"})  # fmt: skip
    hook = saas.mount({"/hook": {"ok": True}})
    await plait.store.set("company.team", "PLAIT_API_TOKEN", live.token or "")
    await plait.store.set("company.team", "ROTATION_WEBHOOK_URL", hook.url("/hook"))
    execution = await plait.blueprint(
        "ops.secrets-rotation-reminder",
        {"plait_url": live.url, "namespaces": f'["{namespace}"]', "max_age_days": 1},
    )
    assert execution.state is State.SUCCESS, execution.error
    assert (execution.outputs["due"], execution.outputs["checked"]) == ([], 1)
    assert hook.calls() == []
