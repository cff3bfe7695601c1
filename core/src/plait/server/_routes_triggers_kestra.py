"""Kestra's trigger API paths (its ``TriggerController``, without the tenant) served over
Plait's trigger operations, with Kestra's shapes: ``GET /api/v1/triggers/search``,
``GET /api/v1/triggers/{namespace}/{flowId}``, ``PUT /api/v1/triggers`` (disable/enable),
the backfill's ``PUT .../backfill/pause``, ``PUT .../backfill/unpause`` and
``POST .../backfill/delete``, and the bulk ``set-disabled`` / ``unlock`` ``by-triggers``.

A Kestra trigger is ``{namespace, flowId, triggerId, date, nextExecutionDate, backfill,
disabled, executionId, evaluateRunningDate, workerId, updatedDate}``; the search lists
``{abstractTrigger, triggerContext}`` pairs, as Kestra's UI reads them.
"""

from __future__ import annotations

from datetime import datetime

import pydantic
from plait_sdk import Model

from plait.server._api import Api, Call, check_id
from plait.server._errors import not_found
from plait.server._hub import Hub
from plait.server._routes_triggers import TriggerOut, edit_backfill, trigger_list
from plait.server._scheduler import set_disabled
from plait.server._trigger_gate import unlock


class KestraBackfill(Model):
    start: datetime
    end: datetime
    current_date: datetime | None = None
    paused: bool


class KestraTrigger(Model):
    """Kestra's ``Trigger`` (a trigger's context)."""

    namespace: str
    flow_id: str
    trigger_id: str
    date: datetime | None = pydantic.Field(None, description="The last tick fired.")
    next_execution_date: datetime | None = None
    backfill: KestraBackfill | None = None
    disabled: bool
    execution_id: str | None = pydantic.Field(None, description="The last execution started.")
    evaluate_running_date: datetime | None = pydantic.Field(
        None, description="Set while an evaluation holds the trigger's lock."
    )
    worker_id: str | None = pydantic.Field(None, description="The process holding the lock.")
    updated_date: datetime | None = pydantic.Field(None, description="The last evaluation.")


class AbstractTrigger(Model):
    """The trigger as the flow declares it."""

    id: str
    type: str
    disabled: bool


class TriggerPair(Model):
    abstract_trigger: AbstractTrigger
    trigger_context: KestraTrigger


class TriggerSearch(Model):
    results: list[TriggerPair]
    total: int


class TriggerPage(Model):
    results: list[KestraTrigger]
    total: int


class SearchQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", populate_by_name=True)
    namespace: str | None = pydantic.Field(None, description="Namespace prefix.", max_length=255)
    flow_id: str | None = pydantic.Field(None, alias="flowId", max_length=255)
    q: str | None = pydantic.Field(
        None, description="Text in the flow or trigger id.", max_length=255
    )
    page: int = pydantic.Field(1, ge=1, le=100_000)
    size: int = pydantic.Field(10, ge=1, le=1000)


class TriggerRef(pydantic.BaseModel):
    """A Kestra trigger as a request body: only its identity (and ``disabled``) is read."""

    model_config = pydantic.ConfigDict(extra="ignore", populate_by_name=True)
    namespace: str = pydantic.Field(max_length=255)
    flow_id: str = pydantic.Field(alias="flowId", max_length=255)
    trigger_id: str = pydantic.Field(alias="triggerId", max_length=255)
    disabled: pydantic.StrictBool | None = None


class SetDisabled(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    triggers: list[TriggerRef] = pydantic.Field(max_length=1000)
    disabled: pydantic.StrictBool


class BulkResult(Model):
    count: int = pydantic.Field(description="Triggers changed.")


class TriggerRefs(pydantic.RootModel[list[TriggerRef]]):
    root: list[TriggerRef] = pydantic.Field(max_length=1000)


def kestra_trigger(t: TriggerOut) -> KestraTrigger:
    b = t.backfill
    return KestraTrigger(
        namespace=t.namespace,
        flow_id=t.flow_id,
        trigger_id=t.trigger_id,
        date=t.last_date,
        next_execution_date=t.next_date,
        backfill=(
            KestraBackfill(start=b.start, end=b.end, current_date=b.current_date, paused=b.paused)
            if b is not None and not b.finished
            else None
        ),
        disabled=t.disabled,
        execution_id=t.last_execution_id,
        evaluate_running_date=t.last_evaluation if t.evaluating else None,
        worker_id=t.locked_by if t.evaluating else None,
        updated_date=t.last_evaluation,
    )


def install(api: Api, hub: Hub) -> None:
    async def listed(
        call: Call, namespace: str | None, flow_id: str | None = None
    ) -> list[TriggerOut]:
        return await trigger_list(hub.runner, hub.repo, namespace, flow_id, call.principal.sees)

    async def find(call: Call, ref: TriggerRef) -> TriggerOut:
        namespace = check_id(ref.namespace, "namespace")
        flow_id = check_id(ref.flow_id, "flow id")
        trigger_id = check_id(ref.trigger_id, "trigger id")
        for t in await listed(call, namespace, flow_id):
            if t.namespace == namespace and t.trigger_id == trigger_id:
                return t
        raise not_found(f"trigger {namespace}.{flow_id}/{trigger_id}")

    @api.route(
        "GET",
        "/api/v1/triggers/search",
        summary="Kestra's trigger search: `{abstractTrigger, triggerContext}` pairs, a page of "
        "them (`page` from 1, `size`) and the `total`.",
        role="viewer",
        tag="triggers",
        query=SearchQuery,
        response=TriggerSearch,
    )
    async def search_triggers(call: Call) -> TriggerSearch:
        q: SearchQuery = call.query
        found = await listed(call, q.namespace, q.flow_id)
        if q.q:
            text = q.q.lower()
            found = [t for t in found if text in f"{t.flow_id} {t.trigger_id}".lower()]
        page = found[(q.page - 1) * q.size : q.page * q.size]
        return TriggerSearch(
            results=[
                TriggerPair(
                    abstract_trigger=AbstractTrigger(
                        id=t.trigger_id, type=t.type, disabled=t.disabled
                    ),
                    trigger_context=kestra_trigger(t),
                )
                for t in page
            ],
            total=len(found),
        )

    @api.route(
        "GET",
        "/api/v1/triggers/{namespace}/{flowId}",
        summary="Kestra's triggers of one flow (their contexts).",
        role="viewer",
        tag="triggers",
        response=TriggerPage,
    )
    async def flow_triggers(call: Call) -> TriggerPage:
        namespace = check_id(call.match("namespace"), "namespace")
        flow_id = check_id(call.match("flowId"), "flow id")
        found = [t for t in await listed(call, namespace, flow_id) if t.namespace == namespace]
        return TriggerPage(results=[kestra_trigger(t) for t in found], total=len(found))

    @api.route(
        "PUT",
        "/api/v1/triggers",
        summary="Kestra's trigger update: disables or enables the trigger the body names "
        "(`disabled`); the other fields are the loop's and are not changed this way.",
        role="editor",
        tag="triggers",
        body=TriggerRef,
        response=KestraTrigger,
    )
    async def update_trigger(call: Call) -> KestraTrigger:
        ref: TriggerRef = call.body
        found = await find(call, ref)
        if ref.disabled is not None and ref.disabled != found.disabled:
            await set_disabled(
                hub.repo, found.namespace, found.flow_id, found.trigger_id, found.type, ref.disabled
            )
            found = await find(call, ref)
        return kestra_trigger(found)

    for action, method, verb in (
        ("pause", "PUT", "pause"),
        ("unpause", "PUT", "unpause"),
        ("cancel", "POST", "delete"),
    ):

        async def backfill(call: Call, action: str = action) -> KestraTrigger:
            ref: TriggerRef = call.body
            found = await find(call, ref)
            key = (found.namespace, found.flow_id, found.trigger_id)
            await edit_backfill(hub, key, action)
            return kestra_trigger(await find(call, ref))

        backfill.__name__ = f"kestra_{verb}_backfill"
        api.route(
            method,
            f"/api/v1/triggers/backfill/{verb}",
            summary={
                "pause": "Kestra's path: pause the backfill of the schedule the body names.",
                "unpause": "Kestra's path: resume the backfill of the schedule the body names.",
                "cancel": "Kestra's path: cancel (delete) the backfill of the schedule the body "
                "names; its progress stays shown in Plait's list.",
            }[action],
            role="editor",
            tag="triggers",
            body=TriggerRef,
            response=KestraTrigger,
            errors=(400, 401, 404, 409, 422),
        )(backfill)

    @api.route(
        "POST",
        "/api/v1/triggers/set-disabled/by-triggers",
        summary="Kestra's bulk disable/enable: `{triggers: [...], disabled}`; all or none "
        "(an unknown trigger answers 404 and changes nothing).",
        role="editor",
        tag="triggers",
        body=SetDisabled,
        response=BulkResult,
    )
    async def set_disabled_by_triggers(call: Call) -> BulkResult:
        asked: SetDisabled = call.body
        found = [await find(call, ref) for ref in asked.triggers]  # every one exists first
        changed = 0
        for t in found:
            if t.disabled != asked.disabled:
                await set_disabled(
                    hub.repo, t.namespace, t.flow_id, t.trigger_id, t.type, asked.disabled
                )
                changed += 1
        return BulkResult(count=changed)

    @api.route(
        "POST",
        "/api/v1/triggers/unlock/by-triggers",
        summary="Kestra's bulk unlock: the triggers of the body (a list of triggers) whose "
        "evaluation holds a lock are unlocked; the count of those unlocked.",
        role="editor",
        tag="triggers",
        body=TriggerRefs,
        response=BulkResult,
    )
    async def unlock_by_triggers(call: Call) -> BulkResult:
        refs: TriggerRefs = call.body
        found = [await find(call, ref) for ref in refs.root]
        count = 0
        for t in found:
            if t.evaluating and await unlock(hub.repo, t.namespace, t.flow_id, t.trigger_id):
                count += 1
        return BulkResult(count=count)
