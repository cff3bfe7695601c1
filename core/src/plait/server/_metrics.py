"""Prometheus metrics (``/metrics``), in a registry of the server's own."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from plait.flows import State
from plait.records import Execution
from plait.server._errors import Handler

#: Task-run states counted as queued: created, waiting for a worker, or waiting for a retry.
QUEUED = (State.CREATED, State.QUEUED, State.RETRYING)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "plait_api_requests",
            "API requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.created = Counter(
            "plait_executions_created",
            "Executions created through the API.",
            ["namespace", "flow"],
            registry=self.registry,
        )
        self.ended = Counter(
            "plait_executions_ended",
            "Executions that reached a terminal state in this process.",
            ["namespace", "flow", "state"],
            registry=self.registry,
        )
        self.running = Gauge(
            "plait_executions_running",
            "Executions being driven by this process.",
            registry=self.registry,
        )
        self.task_runs = Histogram(
            "plait_task_run_duration_seconds",
            "Duration of ended task runs, by task type and flow.",
            ["type", "namespace", "flow"],
            registry=self.registry,
        )
        self.task_runs_now = Gauge(
            "plait_task_runs",
            "Task runs of the executions this process drives: running, or queued (created, "
            "waiting for a worker or a retry).",
            ["state"],
            registry=self.registry,
        )
        self._ended_ids: set[str] = set()
        #: Per execution not ended: its running and queued task runs at its last step.
        self._live: dict[str, tuple[int, int]] = {}

    def step(self, execution: Execution, types: Mapping[str, str] | None = None) -> None:
        """Count an execution's step; ``types`` maps its task ids to task types."""
        if not execution.state.terminal:
            running = sum(1 for r in execution.task_runs if r.state is State.RUNNING)
            queued = sum(
                1
                for r in execution.task_runs
                if r.state in (State.CREATED, State.QUEUED, State.RETRYING)
            )
            self._live[execution.id] = (running, queued)
        else:
            self._live.pop(execution.id, None)
        self.task_runs_now.labels("running").set(sum(r for r, _ in self._live.values()))
        self.task_runs_now.labels("queued").set(sum(q for _, q in self._live.values()))
        if execution.state.terminal and execution.id not in self._ended_ids:
            self._ended_ids.add(execution.id)
            if len(self._ended_ids) > 100_000:
                self._ended_ids.clear()
            self.ended.labels(execution.namespace, execution.flow_id, execution.state.value).inc()
            for run in execution.task_runs:
                if run.history and run.state.terminal:
                    took = (run.history[-1].date - run.history[0].date).total_seconds()
                    kind = (types or {}).get(run.task_id, "unknown")
                    self.task_runs.labels(kind, execution.namespace, execution.flow_id).observe(
                        took
                    )

    def middleware(self) -> Middleware:
        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            try:
                response = await handler(request)
            except web.HTTPException as error:
                self.requests.labels(request.method, name, str(error.status)).inc()
                raise
            self.requests.labels(request.method, name, str(response.status)).inc()
            return response

        return count

    def render(self) -> web.Response:
        body = generate_latest(self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
