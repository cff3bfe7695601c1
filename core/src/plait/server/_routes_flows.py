"""``/api/v1/flows``: deploy YAML, read, search, revisions, diff, roll back, disable, delete."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml
from aiohttp import web

from plait.flows import Flow, load_flow, safe_load, validate_flow_text
from plait.records import FlowRevision
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._flow_store import NEW, save_checked
from plait.server._hub import Hub
from plait.server._models import (
    Deleted,
    DiffQuery,
    FlowDiff,
    FlowList,
    FlowOut,
    FlowQuery,
    FlowSearchQuery,
    FlowUpdateQuery,
    RevisionList,
    RollbackQuery,
    flow_out,
    flow_summary,
)

YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/plain")


def install(api: Api, hub: Hub) -> None:
    async def read_source(call: Call) -> str:
        if call.request.content_type not in YAML_TYPES:
            raise ApiError(415, "send the flow as YAML text: Content-Type: application/x-yaml")
        raw = await call.request.read()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the flow is not UTF-8 text") from None

    def validate(source: str, name: str) -> Flow:
        runner = hub.runner
        problems = validate_flow_text(
            source, registry=runner.host.registry, file=name, templates=runner.templates
        )
        if problems:
            raise ApiError(
                422,
                f"the flow has {len(problems)} problem(s)",
                problems=[str(p) for p in problems],
            )
        return load_flow(
            source, registry=runner.host.registry, file=name, templates=runner.templates
        )

    def visible(call: Call, namespace: str, flow_id: str) -> None:
        check_id(namespace, "namespace")
        check_id(flow_id, "flow id")
        if not call.principal.sees(namespace):
            raise not_found(f"flow {namespace}.{flow_id}")

    async def stored(
        call: Call, namespace: str, flow_id: str, revision: int | None
    ) -> FlowRevision:
        visible(call, namespace, flow_id)
        found = await hub.runner.repo.get_flow(namespace, flow_id, revision)
        if found is None or found.deleted:
            at = f" at revision {revision}" if revision else ""
            raise not_found(f"flow {namespace}.{flow_id}{at}")
        return found

    def out(found: FlowRevision) -> FlowOut:
        try:
            definition = safe_load(found.source)
        except yaml.YAMLError:
            definition = None
        return flow_out(found, definition if isinstance(definition, dict) else {})

    @api.route(
        "POST",
        "/api/v1/flows",
        summary="Create a flow from its YAML source (Content-Type: application/x-yaml).",
        role="editor",
        tag="flows",
        response=FlowOut,
        body_kind="yaml",
        errors=(400, 401, 404, 409, 413, 415, 422),
    )
    async def create_flow(call: Call) -> FlowOut:
        source = await read_source(call)
        flow = validate(source, "flow.yaml")
        if not call.principal.sees(flow.namespace):
            raise not_found(f"namespace {flow.namespace}")
        saved, _ = await save_checked(hub.repo, flow.namespace, flow.id, source, NEW)
        return out(saved)

    @api.route(
        "PUT",
        "/api/v1/flows/{namespace}/{id}",
        summary="Update a flow: a new revision. `?revision=N` names the one edited (409 if stale).",
        role="editor",
        tag="flows",
        query=FlowUpdateQuery,
        response=FlowOut,
        body_kind="yaml",
        errors=(400, 401, 404, 409, 413, 415, 422),
    )
    async def update_flow(call: Call) -> FlowOut:
        namespace, flow_id = call.match("namespace"), call.match("id")
        visible(call, namespace, flow_id)
        source = await read_source(call)
        flow = validate(source, f"{namespace}.{flow_id}.yaml")
        if (flow.namespace, flow.id) != (namespace, flow_id):
            raise ApiError(
                422,
                f"the source is flow {flow.namespace}.{flow.id}, not {namespace}.{flow_id} "
                "(a flow cannot be renamed: create the new one and delete this one)",
            )
        current = await hub.runner.repo.get_flow(namespace, flow_id)
        if current is None or current.deleted:
            raise not_found(f"flow {namespace}.{flow_id}")
        saved, _ = await save_checked(
            hub.repo, namespace, flow_id, source, call.query.revision or current.revision
        )
        return out(saved)

    @api.route(
        "GET",
        "/api/v1/flows/search",
        summary="Search flows by namespace prefix, part of the id, and labels.",
        role="viewer",
        tag="flows",
        query=FlowSearchQuery,
        response=FlowList,
    )
    async def search_flows(call: Call) -> FlowList:
        q: FlowSearchQuery = call.query
        return await _search(call, q.namespace, q.q, q.labels)

    async def _search(
        call: Call, namespace: str | None, text: str | None, labels: list[str]
    ) -> FlowList:
        wanted = _pairs(labels)
        found = []
        for f in await hub.runner.repo.list_flows(namespace):
            if not call.principal.sees(f.namespace):
                continue
            if text and text.lower() not in f.flow_id.lower():
                continue
            if wanted:
                data = safe_load(f.source)
                have = data.get("labels") if isinstance(data, dict) else None
                have = have if isinstance(have, dict) else {}
                if any(str(have.get(k)) != v for k, v in wanted.items()):
                    continue
            found.append(flow_summary(f))
        return FlowList(results=found, total=len(found))

    @api.route(
        "GET",
        "/api/v1/flows/{namespace}",
        summary="The flows of a namespace (and its children).",
        role="viewer",
        tag="flows",
        response=FlowList,
    )
    async def list_flows(call: Call) -> FlowList:
        namespace = check_id(call.match("namespace"), "namespace")
        return await _search(call, namespace, None, [])

    @api.route(
        "GET",
        "/api/v1/flows/{namespace}/{id}",
        summary="A flow (latest or `?revision=N`): source and parsed definition. "
        "`Accept: application/x-yaml` gives the source alone.",
        role="viewer",
        tag="flows",
        query=FlowQuery,
        response=FlowOut,
    )
    async def get_flow(call: Call) -> FlowOut | web.Response:
        found = await stored(call, call.match("namespace"), call.match("id"), call.query.revision)
        if "yaml" in call.request.headers.get("Accept", ""):
            return web.Response(text=found.source, content_type="application/x-yaml")
        return out(found)

    @api.route(
        "DELETE",
        "/api/v1/flows/{namespace}/{id}",
        summary="Delete a flow (its revisions stay for its executions).",
        role="editor",
        tag="flows",
        response=Deleted,
    )
    async def delete_flow(call: Call) -> Deleted:
        namespace, flow_id = call.match("namespace"), call.match("id")
        await stored(call, namespace, flow_id, None)
        if not await hub.runner.repo.delete_flow(namespace, flow_id):
            raise not_found(f"flow {namespace}.{flow_id}")
        return Deleted()

    @api.route(
        "GET",
        "/api/v1/flows/{namespace}/{id}/revisions",
        summary="Every revision of a flow, oldest first.",
        role="viewer",
        tag="flows",
        response=RevisionList,
    )
    async def flow_revisions(call: Call) -> RevisionList:
        namespace, flow_id = call.match("namespace"), call.match("id")
        visible(call, namespace, flow_id)
        found = await hub.runner.repo.flow_revisions(namespace, flow_id)
        if not found:
            raise not_found(f"flow {namespace}.{flow_id}")
        return RevisionList(results=[flow_summary(f) for f in found])

    @api.route(
        "GET",
        "/api/v1/flows/{namespace}/{id}/diff",
        summary="Unified diff of the YAML of two revisions (`?from=1&to=2`).",
        role="viewer",
        tag="flows",
        query=DiffQuery,
        response=FlowDiff,
    )
    async def diff_flow(call: Call) -> FlowDiff:
        namespace, flow_id = call.match("namespace"), call.match("id")
        q: DiffQuery = call.query
        old = await _any_revision(call, namespace, flow_id, q.from_revision)
        new = await _any_revision(call, namespace, flow_id, q.to_revision)
        lines = difflib.unified_diff(
            old.source.splitlines(keepends=True),
            new.source.splitlines(keepends=True),
            fromfile=f"{namespace}.{flow_id}@{old.revision}",
            tofile=f"{namespace}.{flow_id}@{new.revision}",
        )
        return FlowDiff.model_validate(
            {"from": old.revision, "to": new.revision, "diff": "".join(lines)}
        )

    async def _any_revision(
        call: Call, namespace: str, flow_id: str, revision: int
    ) -> FlowRevision:
        visible(call, namespace, flow_id)
        found = await hub.runner.repo.get_flow(namespace, flow_id, revision)
        if found is None:
            raise not_found(f"flow {namespace}.{flow_id} revision {revision}")
        return found

    @api.route(
        "POST",
        "/api/v1/flows/{namespace}/{id}/rollback",
        summary="Roll back to a revision: a new revision with its source (`?revision=N`).",
        role="editor",
        tag="flows",
        query=RollbackQuery,
        response=FlowOut,
        errors=(400, 401, 404, 409, 422),
    )
    async def rollback_flow(call: Call) -> FlowOut:
        namespace, flow_id = call.match("namespace"), call.match("id")
        old = await _any_revision(call, namespace, flow_id, call.query.revision)
        if old.deleted:
            raise ApiError(422, f"revision {old.revision} is a deletion marker")
        validate(old.source, f"{namespace}.{flow_id}@{old.revision}")
        saved, _ = await save_checked(hub.repo, namespace, flow_id, old.source, None)
        return out(saved)

    for action in ("disable", "enable"):
        _toggle(api, hub, action, stored, validate, out)


def _toggle(api: Api, hub: Hub, action: str, stored: Any, validate: Any, out: Any) -> None:
    async def toggle(call: Call) -> FlowOut:
        namespace, flow_id = call.match("namespace"), call.match("id")
        current = await stored(call, namespace, flow_id, None)
        source = _set_disabled(current.source, action == "disable")
        validate(source, f"{namespace}.{flow_id}.yaml")
        saved, _ = await save_checked(hub.repo, namespace, flow_id, source, current.revision)
        return out(saved)  # type: ignore[no-any-return]

    toggle.__name__ = f"{action}_flow"
    api.route(
        "POST",
        f"/api/v1/flows/{{namespace}}/{{id}}/{action}",
        summary=f"{action.capitalize()} a flow (a new revision with `disabled: "
        f"{str(action == 'disable').lower()}`).",
        role="editor",
        tag="flows",
        response=FlowOut,
        errors=(400, 401, 404, 409, 422),
    )(toggle)


_DISABLED = re.compile(r"^disabled:[^\n]*\n?", re.MULTILINE)


def _set_disabled(source: str, disabled: bool) -> str:
    value = f"disabled: {str(disabled).lower()}\n"
    if _DISABLED.search(source):
        return _DISABLED.sub(value, source, count=1)
    return source + ("" if source.endswith("\n") else "\n") + value


def _pairs(labels: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in labels:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise ApiError(400, f"label {pair!r}: expected key:value")
        out[key] = value
    return out


def labels_of(pairs: list[str]) -> dict[str, str]:
    return _pairs(pairs)
