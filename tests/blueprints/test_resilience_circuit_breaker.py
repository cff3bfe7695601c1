"""resilience.circuit-breaker against a flaky API on loopback: failures open the circuit, an
open circuit makes no call, a trial after the open period re-opens or closes it. The open
period's end is moved in the KV store (as time passing would), so nothing waits on a clock."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from blueprint_harness import Plait, Saas
from plait.flows import State
from plait.kv import KVStore

NAMESPACE = "company.team"


async def test_failures_open_the_circuit_and_a_trial_closes_it(plait: Plait, saas: Saas) -> None:
    answers: list[int] = [503, 500, 502, 200]

    async def flaky(request: web.Request) -> web.Response:
        status = answers.pop(0)
        return web.json_response({"rate": 1.1 if status == 200 else None}, status=status)

    api = saas.mount({"/rates": flaky})
    kv = KVStore(plait.repo)
    key = "circuit.rates"
    inputs = {"name": "rates", "url": api.url("/rates"), "failure_threshold": 2,
              "open_seconds": 3600}  # fmt: skip

    async def run() -> dict[str, Any]:
        execution = await plait.blueprint("resilience.circuit-breaker", inputs, NAMESPACE)
        assert execution.state is State.SUCCESS, execution.error
        return dict(execution.outputs)

    first = await run()
    assert (first["circuit"], first["called"], first["succeeded"], first["status"]) == (
        "CLOSED", True, False, 503,
    )  # fmt: skip
    assert (await kv.get(NAMESPACE, key))["failures"] == 1
    second = await run()
    assert (second["circuit"], second["status"]) == ("OPEN", 500)
    state = await kv.get(NAMESPACE, key)
    assert state["failures"] == 2
    assert state["open_until"] > 0

    # Open: the API is not called at all.
    third = await run()
    assert (third["circuit"], third["called"], third["status"]) == ("OPEN", False, 0)
    assert len(api.calls("/rates")) == 2

    # The open period is over: one trial call, which fails and opens the circuit again.
    await kv.set(NAMESPACE, key, {**state, "open_until": 1}, type="JSON")
    trial = await run()
    assert (trial["circuit"], trial["called"], trial["status"]) == ("OPEN", True, 502)
    reopened = await kv.get(NAMESPACE, key)
    assert reopened["open_until"] > 1
    assert len(api.calls("/rates")) == 3

    # Over again: the trial succeeds and closes the circuit, the answer passed through.
    await kv.set(NAMESPACE, key, {**reopened, "open_until": 1}, type="JSON")
    closed = await run()
    assert closed == {"circuit": "CLOSED", "called": True, "succeeded": True, "status": 200,
                      "response": {"rate": 1.1}}  # fmt: skip
    assert await kv.get(NAMESPACE, key) == {"circuit": "CLOSED", "failures": 0, "open_until": 0}
    assert len(api.calls("/rates")) == 4


async def test_an_unreachable_api_counts_as_a_failure(plait: Plait) -> None:
    execution = await plait.blueprint(
        "resilience.circuit-breaker",
        {"name": "down", "url": "http://127.0.0.1:9/nothing", "failure_threshold": 1},
        NAMESPACE,
    )
    assert execution.state is State.WARNING
    assert execution.outputs["circuit"] == "OPEN"
    assert execution.outputs["status"] == 0
    assert (await KVStore(plait.repo).get(NAMESPACE, "circuit.down"))["failures"] == 1
