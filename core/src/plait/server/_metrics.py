"""Prometheus metrics (``/metrics``), in a registry of the server's own."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from plait.engine import Execution
from plait.server._errors import Handler


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
            "Duration of ended task runs, by flow.",
            ["namespace", "flow"],
            registry=self.registry,
        )
        self._ended_ids: set[str] = set()

    def step(self, execution: Execution) -> None:
        if execution.state.terminal and execution.id not in self._ended_ids:
            self._ended_ids.add(execution.id)
            if len(self._ended_ids) > 100_000:
                self._ended_ids.clear()
            self.ended.labels(execution.namespace, execution.flow_id, execution.state.value).inc()
            for run in execution.task_runs:
                if run.history and run.state.terminal:
                    took = (run.history[-1].date - run.history[0].date).total_seconds()
                    self.task_runs.labels(execution.namespace, execution.flow_id).observe(took)

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
