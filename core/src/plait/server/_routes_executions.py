"""``/api/v1/executions``: create (JSON or multipart with FILE inputs), search, get, control."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pydantic
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from plait_sdk import UserError
from sqlalchemy import Connection, select

from plait.files import SCHEME, check_key, execution_prefix, key_of
from plait.flows import Flow, InputType, State
from plait.records import Execution, new_id
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found, validation_problems
from plait.server._hub import Hub
from plait.server._models import (
    Deleted,
    ExecutionCreate,
    ExecutionCreateQuery,
    ExecutionList,
    ExecutionOut,
    ExecutionSearchQuery,
    LabelList,
    ReplayQuery,
    ResumeBody,
    execution_out,
)
from plait.server._routes_flows import labels_of
from plait.storage import ChangeCache
from plait.storage import executions as executions_table

JSON_TYPES = ("application/json", "")
BodyT = TypeVar("BodyT", ExecutionCreate, ResumeBody)


class FileQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    path: str = pydantic.Field(
        pattern=r"^plait:///\S+$", description="A plait:/// URI of a file of this execution."
    )


def install(api: Api, hub: Hub) -> None:
    async def visible_execution(call: Call) -> Execution:
        execution_id = check_id(call.match("executionId"), "execution id")
        execution = await hub.runner.repo.get_execution(execution_id)
        if execution is None or not call.principal.sees(execution.namespace):
            raise not_found(f"execution {execution_id}")
        return execution

    #: The flow (and its revision) a create names, while no process changed any flow.
    flows_seen: ChangeCache[tuple[str, str, int | None], tuple[Flow, int]] = ChangeCache()

    async def flow_for(namespace: str, flow_id: str, revision: int | None) -> tuple[Flow, int]:
        version = await hub.repo.changes()
        key = (namespace, flow_id, revision)
        known = flows_seen.get(version, key)
        if known is not None:
            return known
        stored = await hub.runner.repo.get_flow(namespace, flow_id, revision)
        if stored is None or stored.deleted:
            at = f" at revision {revision}" if revision else ""
            raise not_found(f"flow {namespace}.{flow_id}{at}")
        flow = await hub.runner.flow_of(namespace, flow_id, stored.revision)
        flows_seen.put(version, key, (flow, stored.revision))
        return flow, stored.revision

    @api.route(
        "POST",
        "/api/v1/executions/{namespace}/{id}",
        summary="Start an execution of a flow. Inputs as multipart/form-data fields (files for "
        'FILE inputs) or as JSON `{"inputs": {...}, "labels": {...}}`.',
        role="editor",
        tag="executions",
        query=ExecutionCreateQuery,
        body=ExecutionCreate,
        body_kind="inputs",
        response=ExecutionOut,
        errors=(400, 401, 404, 413, 415, 422, 503),
    )
    async def create_execution(call: Call) -> ExecutionOut:
        if not hub.accepting:
            raise ApiError(503, "the server is shutting down")
        namespace = check_id(call.match("namespace"), "namespace")
        flow_id = check_id(call.match("id"), "flow id")
        if not call.principal.sees(namespace):
            raise not_found(f"flow {namespace}.{flow_id}")
        q: ExecutionCreateQuery = call.query
        flow, revision = await flow_for(namespace, flow_id, q.revision)
        hub.know_flow(flow, revision)
        execution_id = new_id()
        prefix = execution_prefix(namespace, flow_id, execution_id)
        uploaded: list[str] = []
        try:
            inputs, labels = await read_inputs(call, flow, prefix, uploaded)
            labels.update(labels_of(q.labels))
            execution = await hub.runner.create(
                flow, revision, inputs, labels=labels, execution_id=execution_id
            )
        except UserError as error:
            await _forget(uploaded)
            raise ApiError(422, str(error), problems=[str(error)]) from None
        except BaseException:
            await _forget(uploaded)  # nothing half-written: no execution, no stray file
            raise
        hub.metrics.created.labels(namespace, flow_id).inc()
        task = hub.spawn(hub.runner.drive(flow, execution), f"execution {execution.id}")
        if q.wait:
            execution = await task
        return execution_out(execution)

    async def _forget(keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(UserError, OSError):
                await hub.runner.storage.delete(key)

    async def read_inputs(
        call: Call, flow: Flow, prefix: str, uploaded: list[str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        files = {i.id for i in flow.inputs if i.type is InputType.FILE}
        body = await read_body(call, ExecutionCreate, files, prefix, uploaded)
        return body.inputs, body.labels

    async def read_body(
        call: Call,
        model: type[BodyT],
        file_inputs: set[str],
        prefix: str,
        uploaded: list[str],
    ) -> BodyT:
        """Inputs (and labels) of a create or a resume: JSON shaped as ``model``, or form
        fields, multipart ones with files for ``file_inputs`` streamed to storage under
        ``prefix`` (their keys added to ``uploaded``, for the caller to forget on failure)."""
        request = call.request
        kind = request.content_type
        if not request.body_exists:
            return model()
        try:
            if kind == "multipart/form-data":
                return model(inputs=await read_multipart(request, file_inputs, prefix, uploaded))
            if kind == "application/x-www-form-urlencoded":
                form = await request.post()
                return model(inputs={k: v for k, v in form.items() if isinstance(v, str)})
        except HttpProcessingError as error:
            # aiohttp's form parser refuses a malformed part header (control characters, a
            # bad boundary): the client's mistake, so a 400 naming it, never a 500.
            raise ApiError(400, f"malformed {kind} body: {error.message}") from None
        if kind in JSON_TYPES or kind.endswith("+json"):
            raw = await request.read()
            if not raw.strip():
                return model()
            try:
                return model.model_validate_json(raw)
            except pydantic.ValidationError as error:
                bad_json = any(e["type"] == "json_invalid" for e in error.errors())
                shape = ", ".join(f'"{name}": {{...}}' for name in model.model_fields)
                raise ApiError(
                    400 if bad_json else 422,
                    "the body is not valid JSON"
                    if bad_json
                    else f"the body does not match the expected shape {{{shape}}}",
                    problems=validation_problems(error, "body"),
                ) from None
        raise ApiError(415, f"unsupported Content-Type {kind!r}: send JSON or multipart/form-data")

    async def read_multipart(
        request: web.Request, file_inputs: set[str], prefix: str, uploaded: list[str]
    ) -> dict[str, Any]:
        reader = await request.multipart()
        inputs: dict[str, Any] = {}
        limit = hub.config.max_body_bytes
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or not part.name:
                raise ApiError(400, "every multipart part needs a name (the input id)")
            name = part.name
            if part.filename is not None:
                if name not in file_inputs:
                    raise ApiError(
                        422, f"input {name!r}: a file was sent but it is not a FILE input"
                    )
                key = f"{prefix}/inputs/{check_key(name)}"
                uploaded.append(key)
                await hub.runner.storage.put(key, _chunks(part, hub.config.max_upload_bytes))
                inputs[name] = f"{SCHEME}/{key}"
            else:
                raw = b"".join([chunk async for chunk in _chunks(part, limit)])
                try:
                    inputs[name] = bytes(part.decode(raw)).decode(part.get_charset("utf-8"))
                except (UnicodeDecodeError, LookupError, RuntimeError):
                    raise ApiError(400, f"input {name!r} is not text in its charset") from None
        return inputs

    @api.route(
        "GET",
        "/api/v1/executions/search",
        summary="Executions, newest first, with filters; `cursor` pages (stable while new "
        "executions are created).",
        role="viewer",
        tag="executions",
        query=ExecutionSearchQuery,
        response=ExecutionList,
    )
    async def search_executions(call: Call) -> ExecutionList:
        q: ExecutionSearchQuery = call.query
        wanted = labels_of(q.labels)
        found: list[Execution] = []
        cursor = q.cursor
        while len(found) < q.size:
            batch = await hub.repo.call(functools.partial(_page, q=q, cursor=cursor, call=call))
            if not batch:
                cursor = None
                break
            for execution in batch:
                cursor = execution.id
                if all(execution.labels.get(k) == v for k, v in wanted.items()):
                    found.append(execution)
                    if len(found) == q.size:
                        break
            if len(batch) < q.size * 2:
                if len(found) < q.size:
                    cursor = None
                break
        return ExecutionList(
            results=[execution_out(e) for e in found],
            next_cursor=cursor if len(found) == q.size else None,
        )

    def _page(
        conn: Connection, q: ExecutionSearchQuery, cursor: str | None, call: Call
    ) -> list[Execution]:
        t = executions_table
        query = select(t.c.document).order_by(t.c.id.desc()).limit(q.size * 2)
        for scope in (q.namespace, call.principal.namespace):
            if scope:
                query = query.where(
                    (t.c.namespace == scope) | t.c.namespace.startswith(scope + ".")
                )
        if q.flow_id:
            query = query.where(t.c.flow_id == q.flow_id)
        if q.state:
            query = query.where(t.c.state.in_([s.value for s in q.state]))
        if q.start_date:
            query = query.where(t.c.created >= q.start_date)
        if q.end_date:
            query = query.where(t.c.created < q.end_date)
        if cursor:
            query = query.where(t.c.id < cursor)
        rows = conn.execute(query).all()
        conn.commit()
        return [Execution.model_validate_json(r[0]) for r in rows]

    @api.route(
        "GET",
        "/api/v1/executions/{executionId}",
        summary="An execution with its task runs and their attempts.",
        role="viewer",
        tag="executions",
        response=ExecutionOut,
    )
    async def get_execution(call: Call) -> ExecutionOut:
        return execution_out(await visible_execution(call))

    @api.route(
        "DELETE",
        "/api/v1/executions/{executionId}/kill",
        summary="Kill an execution (running tasks cancelled, subflows killed too).",
        role="editor",
        tag="executions",
        response=ExecutionOut,
        errors=(400, 401, 404, 409),
    )
    async def kill_execution(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        if execution.state.terminal:
            raise ApiError(409, f"execution {execution.id} already ended {execution.state.value}")
        return execution_out(await hub.runner.kill(execution.id))

    @api.route(
        "POST",
        "/api/v1/executions/{executionId}/pause",
        summary="Pause a running execution at its next safe point: no new task run starts, "
        "running ones finish, then it is PAUSED (resume it with `/resume`). Answers at once "
        "with the execution as it is; the request holds across processes and restarts.",
        role="editor",
        tag="executions",
        response=ExecutionOut,
        errors=(400, 401, 404, 409),
    )
    async def pause_execution(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        try:
            return execution_out(await hub.runner.pause(execution.id))
        except UserError as error:
            raise ApiError(409, str(error)) from None

    @api.route(
        "POST",
        "/api/v1/executions/{executionId}/resume",
        summary="Resume a PAUSED execution with the inputs its Pause task declares (onResume), "
        "as JSON or multipart form fields.",
        role="editor",
        tag="executions",
        body=ResumeBody,
        body_kind="inputs",
        response=ExecutionOut,
        errors=(400, 401, 404, 409, 413, 415, 422),
    )
    async def resume_execution(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        if execution.state is not State.PAUSED:
            raise ApiError(409, f"execution {execution.id} is {execution.state.value}, not PAUSED")
        # A resume's inputs are text (no FILE type among a Pause's onResume inputs).
        values = (await read_body(call, ResumeBody, set(), "", [])).inputs
        return await _started(hub.runner.resume(execution.id, values), execution.id, "resume")

    @api.route(
        "POST",
        "/api/v1/executions/{executionId}/restart",
        summary="Restart a FAILED or KILLED execution from its failed task runs.",
        role="editor",
        tag="executions",
        response=ExecutionOut,
        errors=(400, 401, 404, 409),
    )
    async def restart_execution(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        if execution.state not in (State.FAILED, State.KILLED):
            raise ApiError(
                409,
                "only a FAILED or KILLED execution can be restarted; "
                f"it is {execution.state.value}",
            )
        return await _started(hub.runner.restart(execution.id), execution.id, "restart")

    @api.route(
        "POST",
        "/api/v1/executions/{executionId}/replay",
        summary="Run an ended execution again as a new one (from `?taskRunId=` if given).",
        role="editor",
        tag="executions",
        query=ReplayQuery,
        response=ExecutionOut,
        errors=(400, 401, 404, 409, 422),
    )
    async def replay_execution(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        if not execution.state.terminal:
            raise ApiError(409, f"execution {execution.id} is still {execution.state.value}")
        wanted = call.query.task_run_id
        if wanted is not None and all(r.id != wanted for r in execution.task_runs):
            raise not_found(f"task run {wanted} of execution {execution.id}")
        coro = hub.runner.replay(execution.id, wanted)
        result = await hub.start(coro, f"replay:{execution.id}", f"replay of {execution.id}")
        if result is not None:
            return execution_out(result)
        replays = await hub.repo.call(lambda c: _replays_of(c, execution))
        return execution_out(replays[0] if replays else execution)

    async def _started(coro: Any, execution_id: str, what: str) -> ExecutionOut:
        try:
            result = await hub.start(coro, execution_id, f"{what} of {execution_id}")
        except UserError as error:
            raise ApiError(422, str(error), problems=[str(error)]) from None
        if result is None:
            result = await hub.runner.repo.get_execution(execution_id)
            if result is None:
                raise not_found(f"execution {execution_id}")
        return execution_out(result)

    @api.route(
        "DELETE",
        "/api/v1/executions/{executionId}",
        summary="Delete an ended execution with its task runs, logs and metrics.",
        role="editor",
        tag="executions",
        response=Deleted,
        errors=(400, 401, 404, 409),
    )
    async def delete_execution(call: Call) -> Deleted:
        execution = await visible_execution(call)
        if not execution.state.terminal:
            raise ApiError(
                409, f"execution {execution.id} is {execution.state.value}: kill it first"
            )
        await hub.runner.repo.delete_execution(execution.id)
        return Deleted()

    @api.route(
        "POST",
        "/api/v1/executions/{executionId}/labels",
        summary="Set the labels of an execution, ended or running (a JSON list of {key, value}).",
        role="editor",
        tag="executions",
        body=LabelList,
        response=ExecutionOut,
        errors=(400, 401, 404, 409, 422),
    )
    async def set_labels(call: Call) -> ExecutionOut:
        execution = await visible_execution(call)
        labels = {label.key: label.value for label in call.body.root}
        return execution_out(await hub.runner.set_labels(execution.id, labels))

    @api.route(
        "GET",
        "/api/v1/executions/{executionId}/file",
        summary="Download an output file of the execution (`?path=plait:///...`).",
        role="viewer",
        tag="executions",
        query=FileQuery,
        produces="application/octet-stream",
    )
    async def download_file(call: Call) -> web.StreamResponse:
        execution = await visible_execution(call)
        prefix = execution_prefix(execution.namespace, execution.flow_id, execution.id)
        try:
            key = key_of(call.query.path)
        except UserError as error:
            raise ApiError(400, str(error)) from None
        if not key.startswith(prefix + "/"):
            raise not_found(f"file {call.query.path} of execution {execution.id}")
        storage = hub.runner.storage
        try:
            size = await storage.size(key)
        except (UserError, OSError):
            raise not_found(f"file {call.query.path}") from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{key.rsplit("/", 1)[-1]}"',
                "Content-Length": str(size),
            }
        )
        await response.prepare(call.request)
        async for chunk in storage.get(key):
            await response.write(chunk)
        await response.write_eof()
        return response


def _replays_of(conn: Connection, original: Execution) -> list[Execution]:
    t = executions_table
    rows = conn.execute(
        select(t.c.document)
        .where(t.c.namespace == original.namespace, t.c.flow_id == original.flow_id)
        .where(t.c.id > original.id)
        .order_by(t.c.id.desc())
        .limit(50)
    ).all()
    conn.commit()
    found = [Execution.model_validate_json(r[0]) for r in rows]
    return [e for e in found if e.original_id == original.id]


async def _chunks(part: BodyPartReader, limit: int) -> AsyncIterator[bytes]:
    total = 0
    while True:
        chunk = await part.read_chunk(64 * 1024)
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"input {part.name!r} is larger than {limit} bytes")
        yield chunk
