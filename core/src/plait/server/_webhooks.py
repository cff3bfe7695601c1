"""``/api/v1/executions/webhook/{namespace}/{flowId}/{key}``: flows started by HTTP requests.

No API token: the URL key and, when the trigger has ``verify:``, the sender's signature are the
checks. A wrong key, an unknown flow and a disabled flow or trigger all answer the same 404; a
missing, forged or stale signature a bare 401 (counted in ``/metrics`` by outcome). A delivery
id seen before starts nothing and answers with the execution the first delivery started: the
id is inserted in the transaction that creates the execution, under a primary key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from plait_sdk import UserError
from prometheus_client import Counter
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from plait.files import SCHEME, execution_prefix
from plait.flows import Flow, TriggerSpec
from plait.limits import limits
from plait.records import Execution, Lease, new_id, utcnow
from plait.server._errors import ApiError, error_response
from plait.server._hub import Hub
from plait.server._models import execution_out
from plait.server._signatures import check
from plait.server._trigger_gate import conditions_met, record_condition
from plait.storage import ChangeCache, trigger_states, webhook_deliveries
from plait.triggers import FetchType, Provider, Webhook

log = logging.getLogger("plait.server.webhooks")

PATH = "/api/v1/executions/webhook/{namespace}/{flowId}/{key}"
#: Headers a flow never sees (nor the database keeps): credentials meant for a proxy or a UI.
DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
FAILED_STATES = frozenset({"FAILED", "KILLED", "CANCELLED"})


class Duplicate(Exception):
    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id


def install(app: web.Application, hub: Hub) -> list[dict[str, Any]]:
    """Add the webhook routes (public: they bypass token auth); their OpenAPI entries."""
    outcomes = Counter(
        "plait_webhook_requests",
        "Webhook requests by outcome (accepted, duplicate, not_found, missing, forged, stale, "
        "too_large, rate_limited, challenge).",
        ["outcome"],
        registry=hub.metrics.registry,
    )

    buckets = Buckets()
    found_cache: _FoundCache = ChangeCache()

    async def not_found() -> web.Response:
        outcomes.labels("not_found").inc()
        return error_response(404, "not found")

    async def webhook(request: web.Request) -> web.StreamResponse:
        if not hub.accepting:
            raise ApiError(503, "the server is shutting down")
        namespace = request.match_info["namespace"]
        flow_id = request.match_info["flowId"]
        key = request.match_info["key"]
        found = await _find(hub, namespace, flow_id, key, found_cache)
        if found is None:
            return await not_found()
        flow, revision, spec, trigger = found
        wait = buckets.take(f"{namespace}/{flow_id}/{spec.id}", trigger)
        if wait is not None:
            outcomes.labels("rate_limited").inc()
            response = error_response(429, f"too many requests for this webhook; retry in {wait}s")
            response.headers["Retry-After"] = str(wait)
            return response
        limit = min(trigger.max_body_bytes, hub.config.max_body_bytes)
        body = await _read(request, limit)
        if body is None:
            outcomes.labels("too_large").inc()
            return error_response(413, f"request body too large (limit {limit} bytes)")
        delivery_id: str | None = None
        replay_key: str | None = None
        if trigger.signature is not None:
            try:
                secret = await hub.runner.secret(namespace, trigger.signature.secret)
            except UserError as error:
                log.error("webhook %s.%s/%s: %s", namespace, flow_id, spec.id, error)
                raise ApiError(500, "the webhook's signing secret is not available") from None
            checked = check(trigger.signature, secret, request.headers, body, time.time())
            if checked.outcome != "ok":
                outcomes.labels(checked.outcome).inc()
                log.warning(
                    "webhook %s.%s/%s: %s signature refused",
                    namespace,
                    flow_id,
                    spec.id,
                    checked.outcome,
                )
                return error_response(401, "unauthorized")
            delivery_id, replay_key = checked.delivery_id, checked.replay_key
        execution_id = new_id()
        stored = _stored_key(namespace, flow_id, execution_id, request.content_type, body, trigger)
        parsed = None if stored is not None else _parse(request.content_type, body)
        if trigger.signature is not None and isinstance(parsed, dict):
            provider = trigger.signature.provider
            if provider is Provider.SLACK and parsed.get("type") == "url_verification":
                outcomes.labels("challenge").inc()
                return web.json_response({"challenge": str(parsed.get("challenge", ""))})
            if delivery_id is None and trigger.signature.delivery_id_header is None:
                event_id = parsed.get("id" if provider is Provider.STRIPE else "event_id")
                if provider in (Provider.STRIPE, Provider.SLACK) and isinstance(event_id, str):
                    delivery_id = event_id[:255]
        if stored is not None:
            # Binary or large: a file of the new execution, never inline in its row.
            await hub.runner.storage.put(stored, _once(body))
            parsed = f"{SCHEME}/{stored}"
        variables = {
            "id": spec.id,
            "type": Webhook.type_name,
            "body": parsed,
            "headers": _multi(
                (k.lower(), v)
                for k, v in request.headers.items()
                if k.lower() not in DROPPED_HEADERS
            ),
            "parameters": _multi(request.query.items()),
            **({"uri": parsed} if stored is not None else {}),
        }
        if spec.conditions:
            reason = await conditions_met(hub.runner, flow, spec, utcnow(), variables)
            await record_condition(hub.repo, flow, spec, utcnow(), reason)
            if reason is not None:  # as Kestra: 204, nothing started
                outcomes.labels("conditions").inc()
                await _forget(hub, stored)
                return web.Response(status=204)
        try:
            execution = await hub.runner.create(
                flow,
                revision,
                spec.inputs,
                trigger=variables,
                execution_id=execution_id,
                persist=_persist(hub, spec.id, [k for k in (delivery_id, replay_key) if k]),
            )
        except Duplicate as duplicate:
            await _forget(hub, stored)
            outcomes.labels("duplicate").inc()
            first = await hub.runner.repo.get_execution(duplicate.execution_id)
            if first is None:  # deleted since: the delivery still starts nothing
                return web.json_response({"id": duplicate.execution_id}, status=200)
            if trigger.wait and not first.state.terminal:
                first = await _wait_stored(hub, first.id, trigger.timeout.total_seconds())
            return await _answer(hub, first, trigger)
        except BaseException:
            await _forget(hub, stored)  # nothing half-written: no execution, no stray file
            raise
        outcomes.labels("accepted").inc()
        hub.metrics.created.labels(namespace, flow_id).inc()
        task = hub.spawn(hub.runner.drive(flow, execution), f"execution {execution.id}")
        if trigger.wait:
            with contextlib.suppress(TimeoutError):
                execution = await asyncio.wait_for(
                    asyncio.shield(task), trigger.timeout.total_seconds()
                )
            if not task.done():
                execution = await hub.runner.repo.get_execution(execution.id) or execution
        return await _answer(hub, execution, trigger)

    webhook.public = True  # type: ignore[attr-defined]  # read by the auth middleware
    for method in ("GET", "POST", "PUT"):
        app.router.add_route(method, PATH, webhook)
    return [_openapi(method) for method in ("get", "post", "put")]


class Buckets:
    """A token bucket per webhook trigger (``rateLimit`` a second, ``rateBurst`` at once)."""

    def __init__(self) -> None:
        self._levels: dict[str, tuple[float, float]] = {}

    def take(self, key: str, trigger: Webhook) -> int | None:
        """``None`` when the request may go on, else the seconds to wait."""
        rate, burst = trigger.rate_limit, float(trigger.rate_burst)
        if rate <= 0:
            return None
        now = time.monotonic()
        level, last = self._levels.get(key, (burst, now))
        level = min(burst, level + (now - last) * rate)
        if level < 1:
            self._levels[key] = (level, now)
            return math.ceil((1 - level) / rate)
        self._levels[key] = (level - 1, now)
        return None


#: A flow's webhook triggers as a request needs them: (flow, revision, [(trigger, its
#: properties validated, its key's bytes, disabled through the API)]).
_Hooks = tuple[Flow, int, list[tuple[TriggerSpec, Webhook, bytes, bool]]]
_FoundCache = ChangeCache[tuple[str, str], _Hooks]


async def _find(
    hub: Hub, namespace: str, flow_id: str, key: str, cache: _FoundCache | None = None
) -> tuple[Flow, int, TriggerSpec, Webhook] | None:
    """The flow and its enabled webhook trigger with this key, or ``None`` (all alike).

    What is read from the database (the flow's latest revision, its triggers' properties
    validated, which are disabled) is kept in ``cache`` while no process changes a flow or a
    trigger's ``disabled`` (the change counter): a request then reads nothing."""
    if len(namespace) > 255 or len(flow_id) > 255 or len(key) > 256:
        return None
    version = await hub.repo.changes()
    hooks = cache.get(version, (namespace, flow_id)) if cache is not None else None
    if hooks is None:
        hooks = await _hooks(hub, namespace, flow_id)
        if hooks is None:
            return None
        if cache is not None:
            cache.put(version, (namespace, flow_id), hooks)
    flow, revision, triggers = hooks
    match = None
    wanted = key.encode()
    for spec, trigger, secret, disabled in triggers:
        # Compare with every trigger's key (no early exit): timing tells nothing about keys.
        if hmac.compare_digest(secret, wanted) and match is None:
            match = None if disabled else (flow, revision, spec, trigger)
    return match


async def _hooks(hub: Hub, namespace: str, flow_id: str) -> _Hooks | None:
    stored = await hub.runner.repo.get_flow(namespace, flow_id)
    if stored is None or stored.deleted:
        return None
    try:
        flow = await hub.runner.flow_of(namespace, flow_id, stored.revision)
    except UserError:
        return None
    if flow.disabled:
        return None
    triggers: list[tuple[TriggerSpec, Webhook, bytes, bool]] = []
    for spec in flow.triggers:
        info = spec.type_info
        if spec.disabled or info is None or info.cls is not Webhook:
            continue
        trigger = Webhook.model_validate(spec.properties)
        disabled = await _disabled(hub, namespace, flow_id, spec.id)
        triggers.append((spec, trigger, trigger.key.encode(), disabled))
    return flow, stored.revision, triggers


async def _disabled(hub: Hub, namespace: str, flow_id: str, trigger_id: str) -> bool:
    """Disabled through ``/api/v1/triggers`` (the flow's own ``disabled`` is checked above)."""

    def run(conn: Connection) -> bool:
        found = conn.execute(
            select(trigger_states.c.disabled).where(
                trigger_states.c.namespace == namespace,
                trigger_states.c.flow_id == flow_id,
                trigger_states.c.trigger_id == trigger_id,
            )
        ).scalar()
        conn.commit()
        return bool(found)

    return await hub.repo.call(run)


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or ``None`` when it is larger than ``limit`` (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(kind: str, body: bytes) -> Any:
    """JSON parsed when it is JSON, a form as a map, anything else as text (base64 if binary)."""
    if not body:
        return None
    if kind == "application/json" or kind.endswith("+json"):
        with contextlib.suppress(ValueError):
            return json.loads(body)
    if kind == "application/x-www-form-urlencoded":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            form: dict[str, Any] = {}
            for name, value in pairs:
                if name in form:
                    previous = form[name]
                    form[name] = (
                        [*previous, value] if isinstance(previous, list) else [previous, value]
                    )
                else:
                    form[name] = value
            return form
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        return base64.b64encode(body).decode("ascii")


def _multi(items: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name, []).append(value)
    return out


def _persist(hub: Hub, trigger_id: str, keys: list[str]) -> Any:
    """Save the new execution with its delivery keys in the same transaction (when it has any):
    a key stored before means a delivery seen before."""
    if not keys:
        return None

    async def persist(execution: Execution, lease: Lease) -> None:
        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(webhook_deliveries),
                    [
                        {
                            "namespace": execution.namespace,
                            "flow_id": execution.flow_id,
                            "trigger_id": trigger_id,
                            "delivery_id": key,
                            "execution_id": execution.id,
                            "created": utcnow(),
                        }
                        for key in keys
                    ],
                )
            except IntegrityError:
                conn.rollback()
                first = (
                    conn.execute(
                        select(webhook_deliveries.c.execution_id).where(
                            webhook_deliveries.c.namespace == execution.namespace,
                            webhook_deliveries.c.flow_id == execution.flow_id,
                            webhook_deliveries.c.trigger_id == trigger_id,
                            webhook_deliveries.c.delivery_id.in_(keys),
                        )
                    )
                    .scalars()
                    .first()
                )
                conn.commit()
                raise Duplicate(first or "") from None

        await hub.repo.insert_execution(execution, lease, run)

    return persist


async def _wait_stored(hub: Hub, execution_id: str, seconds: float) -> Execution:
    deadline = time.monotonic() + seconds
    while True:
        found = await hub.runner.repo.get_execution(execution_id)
        assert found is not None
        left = deadline - time.monotonic()
        if found.state.terminal or left <= 0:
            return found
        await hub.changed(min(left, 1.0))


async def _answer(hub: Hub, execution: Execution, trigger: Webhook) -> web.Response:
    body: Any = execution_out(execution).model_dump(mode="json", by_alias=True)
    body["trigger"] = {"id": (execution.trigger or {}).get("id"), "type": Webhook.type_name}
    status = 200
    if trigger.wait:
        if not execution.state.terminal:
            status = 202
        elif execution.state.value in FAILED_STATES:
            status = 500
    else:
        body.pop("outputs", None)
    custom = (
        trigger.response_code,
        trigger.response_body,
        trigger.response_headers,
        trigger.response_content_type,
    )
    if not any(custom):
        return web.json_response(body, status=status)
    return await _custom_answer(hub, execution, trigger, body, status)


async def _custom_answer(
    hub: Hub, execution: Execution, trigger: Webhook, body: Any, status: int
) -> web.Response:
    """The answer the sender asked for (``responseCode``, ``responseBody``, ...), rendered with
    the execution; a template that does not render answers 500 (the execution still runs)."""
    context = {
        "trigger": execution.trigger or {},
        "execution": {
            "id": execution.id,
            "namespace": execution.namespace,
            "flowId": execution.flow_id,
            "state": execution.state.value,
            "outputs": execution.outputs,
        },
        "flow": {"namespace": execution.namespace, "id": execution.flow_id},
        "outputs": {run.task_id: run.outputs for run in execution.task_runs if run.outputs},
    }
    render = hub.runner.templates.render_value
    try:
        if trigger.response_code is not None:
            status = int(str(await render(trigger.response_code, context)).strip())
            if not 100 <= status <= 599:
                raise ValueError(f"responseCode {status} is not an HTTP status")
        headers = {
            str(k): str(await render(v, context)) for k, v in trigger.response_headers.items()
        }
        if trigger.response_body is not None:
            body = await render(trigger.response_body, context)
    except Exception as error:
        log.warning(
            "webhook %s.%s: the response could not be rendered: %s",
            execution.namespace,
            execution.flow_id,
            error,
        )
        return error_response(500, "the webhook's response could not be rendered")
    kind = trigger.response_content_type
    if isinstance(body, str) and trigger.response_body is not None:
        text = body
        kind = kind or "text/plain"
    else:
        text = json.dumps(body)
        kind = kind or "application/json"
    if status in (204, 304):
        text = ""
    for name in ("Content-Length", "Transfer-Encoding"):
        headers.pop(name, None)
    response = web.Response(status=status, body=text.encode("utf-8"), headers=headers)
    response.headers["Content-Type"] = kind if ";" in kind else f"{kind}; charset=utf-8"
    return response


#: Content types that are files whatever their bytes decode to.
BINARY_TYPES = ("application/pdf", "application/zip")
BINARY_PREFIXES = ("image/", "audio/", "video/", "font/")


def _stored_key(
    namespace: str,
    flow_id: str,
    execution_id: str,
    kind: str,
    body: bytes,
    trigger: Webhook,
) -> str | None:
    """The storage key the body is written to, or ``None`` when it is kept inline."""
    if not body or trigger.fetch_type is FetchType.FETCH:
        return None
    if trigger.fetch_type is not FetchType.STORE:
        binary = kind in BINARY_TYPES or kind.startswith(BINARY_PREFIXES)
        if not binary and len(body) <= limits().webhook_body_inline_max_bytes:
            try:
                body.decode("utf-8")
                return None
            except UnicodeDecodeError:
                pass
    return f"{execution_prefix(namespace, flow_id, execution_id)}/trigger/body"


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _forget(hub: Hub, key: str | None) -> None:
    if key is not None:
        with contextlib.suppress(Exception):
            await hub.runner.storage.delete(key)


def _openapi(method: str) -> dict[str, Any]:
    json_object = {"application/json": {"schema": {"type": "object"}}}
    responses = {
        "200": "The execution started (with `wait: true`: ended), Kestra's execution shape.",
        "202": "`wait: true` and the execution is still running after the trigger's timeout.",
        "401": "Missing, forged or stale signature (no detail).",
        "404": "Unknown flow, disabled flow or trigger, or wrong key (all alike).",
        "413": "Body larger than the trigger's maxBodyBytes.",
        "429": "More requests than the trigger's rateLimit (with Retry-After).",
        "204": "The trigger's conditions are not met: nothing started.",
        "500": "`wait: true` and the execution failed, or the signing secret is missing.",
        "503": "The server is shutting down.",
    }
    return {
        "path": PATH,
        "method": method,
        "operation": {
            "operationId": f"webhook_{method}",
            "summary": "Start an execution from a webhook (no token: the key and signature).",
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in ("namespace", "flowId", "key")
            ],
            "responses": {
                code: {"description": text, "content": json_object}
                for code, text in responses.items()
            },
        },
    }
