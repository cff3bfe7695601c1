"""``/api/v1/triggers``: the deployed flows' triggers with the loop's state; disable, enable,
unlock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic
from plait_sdk import Model, UserError

from plait.engine._runner import Runner
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._scheduler import Scheduler, TriggerState, set_disabled
from plait.server._trigger_gate import unlock
from plait.storage import SqlRepository


class TriggerOut(Model):
    namespace: str
    flow_id: str
    trigger_id: str
    type: str
    disabled: bool = pydantic.Field(
        description="Disabled in the flow (`disabled: true`) or through this API."
    )
    next_date: datetime | None = None
    last_date: datetime | None = pydantic.Field(None, description="The last tick fired.")
    last_evaluation: datetime | None = None
    last_execution_id: str | None = None
    last_error: str | None = None
    last_condition: str | None = pydantic.Field(
        None,
        description="Why the trigger's `conditions` did not hold at its last evaluation "
        "(null: they held, or it has none).",
    )
    evaluating: bool = pydantic.Field(
        False, description="An evaluation holds the trigger's lock (see `lockedBy`)."
    )
    locked_by: str | None = pydantic.Field(
        None, description="The process evaluating the trigger (host:pid:...)."
    )
    locked_until: datetime | None = pydantic.Field(
        None, description="When the lock expires by itself if its process died."
    )


class TriggerList(Model):
    results: list[TriggerOut]


class TriggerQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)
    namespace: str | None = pydantic.Field(None, description="Namespace prefix.", max_length=255)
    flow_id: str | None = pydantic.Field(None, alias="flowId", max_length=255)


async def trigger_list(
    runner: Runner,
    repo: SqlRepository,
    namespace: str | None = None,
    flow_id: str | None = None,
    sees: Callable[[str], bool] = lambda namespace: True,
) -> list[TriggerOut]:
    """Every trigger of the deployed flows with its state (the API's and the CLI's list)."""

    def spawn(coro: Any, what: str) -> None:  # listing never starts anything
        coro.close()

    states = {
        (s.namespace, s.flow_id, s.trigger_id): s
        for s in await Scheduler(runner, repo, spawn).states()
    }
    out = []
    for stored in await runner.repo.list_flows(namespace):
        if not sees(stored.namespace) or (flow_id is not None and stored.flow_id != flow_id):
            continue
        try:
            flow = await runner.flow_of(stored.namespace, stored.flow_id, stored.revision)
        except UserError:
            continue
        for spec in flow.triggers:
            state = states.get((flow.namespace, flow.id, spec.id))
            off = spec.disabled or flow.disabled
            out.append(_out(flow.namespace, flow.id, spec.id, spec.type, off, state))
    return out


def install(api: Api, hub: Hub) -> None:
    async def triggers(call: Call, namespace: str | None, flow_id: str | None) -> list[TriggerOut]:
        return await trigger_list(hub.runner, hub.repo, namespace, flow_id, call.principal.sees)

    @api.route(
        "GET",
        "/api/v1/triggers",
        summary="Every trigger of the deployed flows: next date, last tick, last evaluation and "
        "last error from the trigger loop; disabled or not.",
        role="viewer",
        tag="triggers",
        query=TriggerQuery,
        response=TriggerList,
    )
    async def list_triggers(call: Call) -> TriggerList:
        q: TriggerQuery = call.query
        return TriggerList(results=await triggers(call, q.namespace, q.flow_id))

    async def toggle(call: Call, off: bool) -> TriggerOut:
        namespace = check_id(call.match("namespace"), "namespace")
        flow_id = check_id(call.match("flowId"), "flow id")
        trigger_id = check_id(call.match("triggerId"), "trigger id")
        if not call.principal.sees(namespace):
            raise not_found(f"trigger {namespace}.{flow_id}/{trigger_id}")
        found = [t for t in await triggers(call, namespace, flow_id) if t.namespace == namespace]
        match = next((t for t in found if t.trigger_id == trigger_id), None)
        if match is None:
            raise not_found(f"trigger {namespace}.{flow_id}/{trigger_id}")
        await set_disabled(hub.repo, namespace, flow_id, trigger_id, match.type, off)
        found = await triggers(call, namespace, flow_id)
        return next(t for t in found if t.namespace == namespace and t.trigger_id == trigger_id)

    @api.route(
        "POST",
        "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/unlock",
        summary="Unlock a trigger whose evaluation's process died (its lock would otherwise "
        "expire by itself after five minutes). Kestra's unlock endpoint.",
        role="editor",
        tag="triggers",
        response=TriggerOut,
    )
    async def unlock_trigger(call: Call) -> TriggerOut:
        namespace = check_id(call.match("namespace"), "namespace")
        flow_id = check_id(call.match("flowId"), "flow id")
        trigger_id = check_id(call.match("triggerId"), "trigger id")
        match = await one(call, namespace, flow_id, trigger_id)
        if not match.evaluating:
            raise ApiError(409, f"trigger {namespace}.{flow_id}/{trigger_id} is not locked")
        await unlock(hub.repo, namespace, flow_id, trigger_id)
        return await one(call, namespace, flow_id, trigger_id)

    async def one(call: Call, namespace: str, flow_id: str, trigger_id: str) -> TriggerOut:
        if not call.principal.sees(namespace):
            raise not_found(f"trigger {namespace}.{flow_id}/{trigger_id}")
        found = [t for t in await triggers(call, namespace, flow_id) if t.namespace == namespace]
        match = next((t for t in found if t.trigger_id == trigger_id), None)
        if match is None:
            raise not_found(f"trigger {namespace}.{flow_id}/{trigger_id}")
        return match

    for verb, off in (("disable", True), ("enable", False)):

        async def handler(call: Call, off: bool = off) -> TriggerOut:
            return await toggle(call, off)

        handler.__name__ = f"{verb}_trigger"
        api.route(
            "POST",
            f"/api/v1/triggers/{{namespace}}/{{flowId}}/{{triggerId}}/{verb}",
            summary=f"{verb.capitalize()} one trigger (a disabled webhook answers 404, a disabled "
            "schedule does not fire).",
            role="editor",
            tag="triggers",
            response=TriggerOut,
        )(handler)


def _out(
    namespace: str,
    flow_id: str,
    trigger_id: str,
    type_name: str,
    disabled: bool,
    state: TriggerState | None,
) -> TriggerOut:
    return TriggerOut(
        namespace=namespace,
        flow_id=flow_id,
        trigger_id=trigger_id,
        type=type_name,
        disabled=disabled or (state is not None and state.disabled),
        next_date=state.next_date if state else None,
        last_date=state.last_date if state else None,
        last_evaluation=state.last_evaluation if state else None,
        last_execution_id=state.last_execution_id if state else None,
        last_error=state.last_error if state else None,
        last_condition=state.last_condition if state else None,
        evaluating=state is not None
        and state.locked_by is not None
        and (state.locked_until is None or state.locked_until > datetime.now(UTC)),
        locked_by=state.locked_by if state else None,
        locked_until=state.locked_until if state else None,
    )
