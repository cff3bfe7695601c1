"""plait.http.Trigger: its poll (``evaluate``) called directly against the real server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from plait_http import HostNotAllowed, Trigger
from plait_http._trigger import truthy
from plait_sdk import ExecutionRequest
from plait_sdk.testing import HarnessContext

from .conftest import Server
from .server import TOKEN


async def test_it_fires_when_the_condition_is_met(server: Server, ctx: HarnessContext) -> None:
    trigger = Trigger.model_validate(
        {
            "uri": server.url("/counter"),
            "responseCondition": "{{ response.statusCode == 200 and response.body.ready }}",
            "interval": "PT30S",
        }
    )
    assert trigger.interval == timedelta(seconds=30)
    assert await trigger.evaluate(ctx) is None  # count 1: not ready
    request = await trigger.evaluate(ctx)  # count 2: ready
    assert isinstance(request, ExecutionRequest)
    assert request.variables["code"] == 200
    assert request.variables["body"] == {"count": 2, "ready": True, "price": 100}
    assert request.variables["uri"] == server.url("/counter")
    assert request.variables["headers"]["content-type"] == ["application/json; charset=utf-8"]
    assert server.state.hits["counter"] == 2


async def test_the_default_condition_judges_the_status_without_failing(
    server: Server, ctx: HarnessContext
) -> None:
    assert await Trigger(uri=server.url("/down")).evaluate(ctx) is None  # 503: no execution
    assert await Trigger(uri=server.url("/json")).evaluate(ctx) is not None


async def test_kestra_style_json_condition(server: Server, ctx: HarnessContext) -> None:
    trigger = Trigger.model_validate(
        {
            "uri": server.url("/counter"),
            "responseCondition": "{{ json(response.body).price <= 100 }}",
        }
    )
    assert await trigger.evaluate(ctx) is None  # price 110
    assert await trigger.evaluate(ctx) is not None  # price 100


async def test_stop_after_stops_polling(server: Server, ctx: HarnessContext) -> None:
    trigger = Trigger.model_validate(
        {"uri": server.url("/json"), "stopAfter": ["success"], "interval": "PT1S"}
    )
    assert await trigger.evaluate(ctx) is not None
    trigger.execution_ended("e1", "FAILED")
    assert not trigger.stopped
    assert await trigger.evaluate(ctx) is not None
    trigger.execution_ended("e2", "SUCCESS")
    assert trigger.stopped
    hits = server.state.hits.copy()
    assert await trigger.evaluate(ctx) is None
    assert server.state.hits == hits  # no request once stopped
    # The stop is in the durable state: a new object loaded from it (a restart) stays stopped.
    assert trigger.dump_state() == {"stopped": True}
    again = Trigger.model_validate({"uri": server.url("/json"), "stopAfter": ["success"]})
    again.load_state(trigger.dump_state())
    assert await again.evaluate(ctx) is None
    assert server.state.hits == hits


async def test_templates_and_secrets_are_rendered_by_the_trigger(
    server: Server, ctx: HarnessContext
) -> None:
    trigger = Trigger.model_validate(
        {
            "uri": server.url("/auth/bearer"),
            "options": {"auth": {"type": "BEARER", "token": "{{ secret('API_TOKEN') }}"}},
            "responseCondition": "{{ response.body.ok }}",
        }
    )
    request = await trigger.evaluate(ctx)
    assert request is not None
    assert TOKEN in ctx.masker.values
    assert TOKEN not in ctx.log_text


async def test_the_trigger_is_guarded(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(HostNotAllowed):
        await Trigger(uri="http://169.254.169.254/").evaluate(ctx)
    with pytest.raises(HostNotAllowed):
        await Trigger(uri=server.url("/redirect?to=http://169.254.169.254/")).evaluate(ctx)


def test_stop_after_states_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        Trigger.model_validate({"uri": "https://example.com", "stopAfter": ["DONE"]})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (1, True),
        ("", False),
        ("false", False),
        ("0", False),
        ("-0", False),
        ("null", False),
        ("true", True),
        ("yes", True),
        ({"a": 1}, True),
        ([], False),
    ],
)
def test_truthiness_is_kestras(value: object, expected: bool) -> None:
    assert truthy(value) is expected
