"""The ``plait.http.Trigger`` polling trigger."""

from __future__ import annotations

from typing import Any, ClassVar

from plait_sdk import Example, ExecutionRequest, Model, PollingTrigger, RunContext, UserError
from pydantic import BaseModel, field_validator

from plait_http._tasks import HttpProperties, Request

#: Execution states ``stopAfter`` may name (the terminal ones).
STOP_STATES = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"})
_FALSY = frozenset({"", "false", "0", "-0", "null", "none"})


def truthy(value: Any) -> bool:
    """Kestra's truthiness: ``null``, ``false``, ``0``, ``-0`` and ``''`` are false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY
    return bool(value)


class TriggerState(Model):
    """What the trigger keeps across evaluations and restarts (the server stores it)."""

    stopped: bool = False
    """``stopAfter`` matched the end of an execution this trigger started."""


class Trigger(HttpProperties, PollingTrigger):
    """Call a URL every ``interval`` and start the flow when the response meets a condition.

    ``responseCondition`` is rendered after each call with ``response.statusCode``,
    ``response.body`` (parsed when JSON) and ``response.headers``; a truthy result starts an
    execution whose ``trigger.code``, ``trigger.body``, ``trigger.headers`` and ``trigger.uri``
    describe the response. Error status codes do not fail the poll: the condition judges them.
    With ``stopAfter``, the trigger stops polling once an execution it started ends in one of
    the listed states.
    """

    type_name: ClassVar[str] = "plait.http.Trigger"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.http.Trigger",
        "io.kestra.plugin.fs.http.Trigger",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Alert once when a price drops below a threshold",
            full=True,
            code=(
                "id: price_alert\n"
                "namespace: demo\n"
                "tasks:\n"
                "  - id: alert\n"
                "    type: plait.core.Log\n"
                '    message: "The price is now {{ trigger.body.price }}"\n'
                "triggers:\n"
                "  - id: price\n"
                "    type: plait.http.Trigger\n"
                "    uri: https://shop.example.com/api/products/1\n"
                '    responseCondition: "{{ response.statusCode == 200 and '
                'response.body.price <= 110 }}"\n'
                "    interval: PT30S\n"
                "    stopAfter: [SUCCESS]"
            ),
        ),
    )

    response_condition: str = "{{ response.statusCode < 400 }}"
    """A template rendered after each call, with ``response.statusCode``, ``response.body`` and
    ``response.headers``; the flow starts when it is truthy (``false``, ``0``, ``null`` and
    ``''`` are not)."""
    stop_after: list[str] | None = None
    """Stop polling once an execution this trigger started ends in one of these states
    (``SUCCESS``, ``WARNING``, ``FAILED``, ``KILLED``, ``CANCELLED``)."""

    state_model: ClassVar[type[BaseModel] | None] = TriggerState

    @field_validator("stop_after")
    @classmethod
    def _states(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        states = [s.strip().upper() for s in value]
        unknown = [s for s in states if s not in STOP_STATES]
        if unknown:
            raise ValueError(
                f"stopAfter: unknown state(s) {', '.join(unknown)}; use {sorted(STOP_STATES)}"
            )
        return states

    @property
    def stopped(self) -> bool:
        """True once ``stopAfter`` matched the end of an execution this trigger started."""
        state: TriggerState = self.state
        return state.stopped

    def execution_ended(self, execution_id: str, state: str) -> None:
        """An execution this trigger started ended in ``state``: ``stopAfter`` may stop it
        (kept in the durable state, so it stays stopped after a restart)."""
        if self.stop_after and state.strip().upper() in self.stop_after:
            own: TriggerState = self.state
            own.stopped = True

    async def request(self, ctx: RunContext) -> Request:
        """The request this trigger sends, with its templates rendered."""
        data = self.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            exclude={"response_condition", "stop_after", "interval"},
        )
        rendered = await ctx.render(data)
        options = dict(rendered.get("options") or {})
        options["allowFailed"] = True  # the condition, not the status code, decides
        rendered["options"] = options
        try:
            return Request.model_validate(rendered)
        except ValueError as error:
            raise UserError(f"{self.type_name}: {error}") from None

    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        if self.stopped:
            return None
        request = await self.request(ctx)
        output = await request.run(ctx)
        response = {"statusCode": output.code, "body": output.body, "headers": output.headers}
        verdict = await ctx.render(self.response_condition, {"response": response})
        if not truthy(verdict):
            ctx.log.debug("HTTP %d: responseCondition is %r, no execution", output.code, verdict)
            return None
        ctx.log.info("HTTP %d: responseCondition is met, starting an execution", output.code)
        return ExecutionRequest(variables=output.dump())
