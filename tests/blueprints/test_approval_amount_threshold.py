"""approval.amount-threshold: straight through under the threshold, a pause above it."""

from __future__ import annotations

from blueprint_harness import Plait, Saas, task_run
from plait.flows import State


async def test_small_amounts_go_straight_through(plait: Plait, saas: Saas) -> None:
    api = saas.mount({"/submit": {"id": "r-1"}})
    execution = await plait.blueprint(
        "approval.amount-threshold",
        {
            "amount": 99.5,
            "threshold": 100,
            "reference": "refund 7",
            "submit_url": api.url("/submit"),
        },
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"approver": "automatic"}
    [call] = api.calls("/submit")
    assert call.json() == {"reference": "refund 7", "amount": 99.5, "approver": "automatic"}


async def test_a_large_amount_waits_for_an_approval(plait: Plait, saas: Saas) -> None:
    api = saas.mount({"/submit": {"id": "r-2"}})
    inputs = {"amount": 5000, "threshold": 100, "reference": "refund 8",
              "submit_url": api.url("/submit")}  # fmt: skip
    execution = await plait.blueprint("approval.amount-threshold", inputs)
    assert execution.state is State.PAUSED
    assert api.calls("/submit") == []  # nothing sent before the decision

    done = await plait.runner.resume(execution.id, {"approved": True, "approver": "ana"})
    assert done.state is State.SUCCESS, done.error
    assert done.outputs == {"approver": "ana"}
    [call] = api.calls("/submit")
    assert call.json() == {"reference": "refund 8", "amount": 5000.0, "approver": "ana"}


async def test_a_rejection_fails_and_sends_nothing(plait: Plait, saas: Saas) -> None:
    api = saas.mount({"/submit": {"id": "r-3"}})
    inputs = {"amount": 5000, "threshold": 100, "reference": "refund 9",
              "submit_url": api.url("/submit")}  # fmt: skip
    execution = await plait.blueprint("approval.amount-threshold", inputs)
    done = await plait.runner.resume(
        execution.id, {"approved": False, "approver": "bo", "reason": "duplicate"}
    )
    assert done.state is State.FAILED
    assert task_run(done, "rejected").error == "rejected by bo: duplicate"
    assert api.calls("/submit") == []
