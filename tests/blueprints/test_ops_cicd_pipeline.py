"""ops.cicd-pipeline: build, test and staging run, the execution pauses at the QA gate and the
change gate (resumed as a person would), production is deployed; failing tests and a refusal
at a gate take the other paths, and one person cannot pass both gates."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Plait, Saas, task_run
from plait.flows import State


def _ci(tests_pass: bool) -> dict[str, object]:
    async def build(request: web.Request) -> web.Response:
        version = (await request.json())["version"]
        return web.json_response({"artifact": f"shop-{version}.tar.gz"})

    return {"/build": build, "/test": {"passed": tests_pass}, "/deploy": {"ok": True},
            "/rollback": {"ok": True}}  # fmt: skip


async def test_a_release_passes_both_gates_to_production(plait: Plait, saas: Saas) -> None:
    ci = saas.mount(_ci(tests_pass=True))
    inputs = {"version": "1.4.0", "api_url": ci.url()}
    execution = await plait.blueprint("ops.cicd-pipeline", inputs)
    assert execution.state is State.PAUSED
    assert [c.path for c in ci.calls()] == ["/build", "/test", "/deploy"]
    assert ci.calls("/deploy")[0].json() == {"environment": "staging",
                                             "artifact": "shop-1.4.0.tar.gz"}  # fmt: skip

    at_change = await plait.runner.resume(execution.id, {"approved": True, "approver": "qa-ana"})
    assert at_change.state is State.PAUSED  # the second gate
    assert len(ci.calls()) == 3  # nothing deployed to production yet

    done = await plait.runner.resume(execution.id, {"approved": True, "approver": "cab-bo"})
    assert done.state is State.SUCCESS, done.error
    assert done.outputs == {
        "state": "Released",
        "path": "Test -> Staging -> QASignOff -> ChangeApproval -> Production -> Released",
        "artifact": "shop-1.4.0.tar.gz",
        "approvers": "qa-ana, cab-bo",
    }
    assert [(c.path, c.json().get("environment")) for c in ci.calls()] == [
        ("/build", None), ("/test", None), ("/deploy", "staging"), ("/deploy", "production"),
    ]  # fmt: skip


async def test_failing_tests_deploy_nothing(plait: Plait, saas: Saas) -> None:
    ci = saas.mount(_ci(tests_pass=False))
    execution = await plait.blueprint(
        "ops.cicd-pipeline", {"version": "1.4.1", "api_url": ci.url()}
    )
    assert execution.state is State.SUCCESS, execution.error
    assert (execution.outputs["state"], execution.outputs["approvers"]) == ("TestsFailed", "")
    assert [c.path for c in ci.calls()] == ["/build", "/test"]


async def test_a_refused_sign_off_rolls_staging_back(plait: Plait, saas: Saas) -> None:
    ci = saas.mount(_ci(tests_pass=True))
    execution = await plait.blueprint(
        "ops.cicd-pipeline", {"version": "1.5.0", "api_url": ci.url()}
    )
    done = await plait.runner.resume(
        execution.id, {"approved": False, "approver": "qa-ana", "comment": "checkout broken"}
    )
    assert done.state is State.SUCCESS, done.error
    assert done.outputs["state"] == "Rejected"
    assert done.outputs["path"] == "Test -> Staging -> QASignOff -> RollingBack -> Rejected"
    assert [c.path for c in ci.calls()] == ["/build", "/test", "/deploy", "/rollback"]
    assert ci.calls("/rollback")[0].json() == {"environment": "staging",
                                               "artifact": "shop-1.5.0.tar.gz"}  # fmt: skip


async def test_one_person_cannot_pass_both_gates(plait: Plait, saas: Saas) -> None:
    ci = saas.mount(_ci(tests_pass=True))
    execution = await plait.blueprint(
        "ops.cicd-pipeline", {"version": "1.6.0", "api_url": ci.url()}
    )
    await plait.runner.resume(execution.id, {"approved": True, "approver": "ana"})
    done = await plait.runner.resume(execution.id, {"approved": True, "approver": "ana"})
    assert done.state is State.FAILED
    assert "someone else than the QA approver ana" in (task_run(done, "four_eyes").error or "")
    assert [c.json()["environment"] for c in ci.calls("/deploy")] == ["staging"]
