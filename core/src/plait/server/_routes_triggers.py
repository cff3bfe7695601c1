"""``/api/v1/triggers``: the deployed flows' triggers with the loop's state; disable, enable,
unlock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic
from plait_sdk import Model, UserError

from plait.engine import Runner
from plait.server._api import Api, Call, check_id
from plait.server._backfill import change
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._scheduler import Scheduler, TriggerState, set_disabled
from plait.server._trigger_gate import unlock
from plait.storage import SqlRepository
from plait.triggers import Backfill, BackfillProgress, Schedule, begin_backfill


class BackfillOut(Model):
    start: datetime
    end: datetime
    current_date: datetime | None = pydantic.Field(None, description="The next tick to fire.")
    concurrency: int
    done: int = pydantic.Field(description="Ticks fired so far.")
    total: int = pydantic.Field(description="Ticks from start to end.")
    running: int = pydantic.Field(description="Its executions not ended at the last look.")
    paused: bool
    cancelled: bool
    finished: bool


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
    backfill: BackfillOut | None = pydantic.Field(
        None, description="A schedule's backfill and its progress (the last one, even ended)."
    )
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

    async def schedule_of(call: Call) -> tuple[tuple[str, str, str], Schedule]:
        namespace = check_id(call.match("namespace"), "namespace")
        flow_id = check_id(call.match("flowId"), "flow id")
        trigger_id = check_id(call.match("triggerId"), "trigger id")
        what = f"trigger {namespace}.{flow_id}/{trigger_id}"
        if not call.principal.sees(namespace):
            raise not_found(what)
        stored = await hub.repo.get_flow(namespace, flow_id)
        if stored is None or stored.deleted:
            raise not_found(what)
        flow = await hub.runner.flow_of(namespace, flow_id, stored.revision)
        spec = next((t for t in flow.triggers if t.id == trigger_id), None)
        if spec is None:
            raise not_found(what)
        if spec.type_info is None or spec.type_info.cls is not Schedule:
            raise ApiError(422, f"{what} is not a plait.core.Schedule: only schedules backfill")
        return (namespace, flow_id, trigger_id), Schedule.model_validate(spec.properties)

    async def shown(key: tuple[str, str, str], call: Call) -> TriggerOut:
        found = await triggers(call, key[0], key[1])
        return next(t for t in found if t.namespace == key[0] and t.trigger_id == key[2])

    @api.route(
        "POST",
        "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/backfill",
        summary="Start a backfill of a schedule: every tick from `start` to `end` (default: "
        "now) once, at most `concurrency` executions at a time; progress in the trigger list.",
        role="editor",
        tag="triggers",
        body=Backfill,
        body_kind="json",
        response=TriggerOut,
        errors=(400, 401, 404, 409, 422),
    )
    async def start_backfill(call: Call) -> TriggerOut:
        key, schedule = await schedule_of(call)
        asked: Backfill = call.body
        progress = begin_backfill(asked, schedule, datetime.now(UTC))

        def start(old: BackfillProgress | None) -> BackfillProgress:
            if old is not None and not old.finished:
                raise ApiError(409, "a backfill is under way: cancel it first (DELETE)")
            return progress

        await change(hub.repo, key, start)
        return await shown(key, call)

    for action in ("pause", "unpause", "cancel"):

        async def act(call: Call, action: str = action) -> TriggerOut:
            key, _ = await schedule_of(call)
            await edit_backfill(hub, key, action)
            return await shown(key, call)

        act.__name__ = f"{action}_backfill"
        method, suffix = ("DELETE", "") if action == "cancel" else ("POST", f"/{action}")
        api.route(
            method,
            f"/api/v1/triggers/{{namespace}}/{{flowId}}/{{triggerId}}/backfill{suffix}",
            summary={
                "pause": "Pause a schedule's backfill (its running executions go on).",
                "unpause": "Resume a paused backfill.",
                "cancel": "Cancel a schedule's backfill (its progress stays shown).",
            }[action],
            role="editor",
            tag="triggers",
            response=TriggerOut,
            errors=(400, 401, 404, 409, 422),
        )(act)

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

    from plait.server import _routes_triggers_kestra  # it builds on this module's helpers

    _routes_triggers_kestra.install(api, hub)


async def edit_backfill(hub: Hub, key: tuple[str, str, str], action: str) -> None:
    """Pause, unpause or cancel the backfill under way of the trigger ``key`` (409 if none)."""

    def edit(old: BackfillProgress | None) -> BackfillProgress:
        if old is None or old.finished:
            raise ApiError(409, "no backfill under way")
        if action == "cancel":
            return old.model_copy(update={"cancelled": True})
        return old.model_copy(update={"paused": action == "pause"})

    await change(hub.repo, key, edit)


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
        backfill=_backfill_out(state.backfill) if state and state.backfill else None,
    )


def _backfill_out(text: str) -> BackfillOut:
    p = BackfillProgress.model_validate_json(text)
    return BackfillOut(
        start=p.start,
        end=p.end,
        current_date=p.current_date,
        concurrency=p.concurrency,
        done=p.done,
        total=p.total,
        running=len(p.running),
        paused=p.paused,
        cancelled=p.cancelled,
        finished=p.finished,
    )
