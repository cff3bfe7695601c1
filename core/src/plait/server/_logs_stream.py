"""``/api/v1/logs``: query an execution's log lines, or follow them live (Server-Sent Events).

Each line is a ``message`` event whose id is the line's ``seq``: a client that reconnects with
``Last-Event-ID`` gets exactly the lines after it, none twice. A ``state`` event tells each
state the execution is seen in while it runs (``PAUSED``: waiting for a resume), and the stream
ends with an ``end`` event (the final state) once the execution ended and every line was sent.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_sse import sse_response

from plait.records import Execution
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._models import LogLines, LogQuery, log_line

BATCH = 500


def install(api: Api, hub: Hub) -> None:
    async def visible(call: Call) -> Execution:
        execution_id = check_id(call.match("executionId"), "execution id")
        execution = await hub.runner.repo.get_execution(execution_id)
        if execution is None or not call.principal.sees(execution.namespace):
            raise not_found(f"execution {execution_id}")
        return execution

    @api.route(
        "GET",
        "/api/v1/logs/{executionId}",
        summary="The log lines of an execution, oldest first (`minLevel`, `taskRunId`, `taskId`).",
        role="viewer",
        tag="logs",
        query=LogQuery,
        response=LogLines,
    )
    async def execution_logs(call: Call) -> LogLines:
        execution = await visible(call)
        q: LogQuery = call.query
        records = await hub.runner.repo.logs(
            execution.id, taskrun_id=q.task_run_id, min_level=q.min_level
        )
        return LogLines([log_line(r) for r in records if q.task_id in (None, r.task_id)])

    @api.route(
        "GET",
        "/api/v1/logs/{executionId}/follow",
        summary="Follow an execution's log lines as Server-Sent Events (id: the line's seq; "
        "reconnect with Last-Event-ID to get exactly the missed lines).",
        role="viewer",
        tag="logs",
        query=LogQuery,
        produces="text/event-stream",
    )
    async def follow_logs(call: Call) -> web.StreamResponse:
        execution = await visible(call)
        q: LogQuery = call.query
        after = _last_event_id(call.request)
        repo = hub.runner.repo
        state = None
        async with sse_response(call.request, ping_interval=15) as stream:
            while True:
                current = await repo.get_execution(execution.id)
                ended = current is None or current.state.terminal
                if current is not None and not ended and current.state is not state:
                    state = current.state
                    await stream.send(state.value, event="state")
                while True:
                    records = await repo.logs(
                        execution.id,
                        taskrun_id=q.task_run_id,
                        min_level=q.min_level,
                        after_seq=after,
                        limit=BATCH,
                    )
                    for record in records:
                        after = record.seq
                        if q.task_id in (None, record.task_id):
                            body = log_line(record).model_dump_json(by_alias=True)
                            await stream.send(body, id=str(record.seq))
                    if len(records) < BATCH:
                        break
                if ended:
                    await stream.send(current.state.value if current else "DELETED", event="end")
                    break
                await hub.changed(1.0)
        return stream


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Last-Event-ID {raw!r}: expected the seq of a log line") from None
    if value < 0:
        raise ApiError(400, "Last-Event-ID must not be negative")
    return value
