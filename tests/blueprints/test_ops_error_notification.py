"""ops.error-notification: posts the failure to a webhook; called from another flow's errors."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Plait, Saas, task_run
from plait.flows import State


async def test_a_failing_flow_announces_itself_through_the_blueprint(
    plait: Plait, saas: Saas
) -> None:
    hook = saas.mount({"/hook": {"ok": True}})
    execution = await plait.flow(
        f"""
        id: nightly
        namespace: company.team
        tasks:
          - id: work
            type: plait.core.Fail
            errorMessage: disk full
        errors:
          - id: notify
            type: plait.core.Subflow
            blueprint: ops.error-notification
            blueprintVersion: ">=1.0,<2"
            inputs:
              webhook_url: {hook.url("/hook")}
              message: "{{{{ flow.id }}}} failed"
              flow: "{{{{ flow.namespace }}}}.{{{{ flow.id }}}}"
              execution: "{{{{ execution.id }}}}"
              severity: critical
        """
    )
    assert execution.state is State.FAILED
    assert task_run(execution, "notify").state is State.SUCCESS
    [call] = hook.calls("/hook")
    assert call.method == "POST"
    assert call.json() == {
        "text": "nightly failed",
        "flow": "company.team.nightly",
        "execution": execution.id,
        "severity": "critical",
    }
    assert task_run(execution, "notify").outputs["outputs"] == {"status": 200}


async def test_a_refusing_webhook_fails_the_notification_after_retries(
    plait: Plait, saas: Saas
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "invalid token"}, status=403)

    hook = saas.mount({"/hook": refuse})
    execution = await plait.blueprint(
        "ops.error-notification", {"webhook_url": hook.url("/hook"), "message": "x"}
    )
    assert execution.state is State.FAILED
    assert len(hook.calls("/hook")) == 3  # maxAttempts
    assert "403" in (task_run(execution, "post").error or "")
