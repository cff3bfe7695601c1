"""The aiohttp application: middlewares, routes and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from plait.server import (
    _logs_stream,
    _routes_blueprints,
    _routes_executions,
    _routes_flows,
    _routes_namespaces,
    _routes_nsfiles,
    _routes_secrets,
    _routes_system,
    _routes_triggers,
    _routes_users,
    _ui,
    _webhooks,
)
from plait.server._api import Api
from plait.server._auth import RateLimiter, auth_middleware
from plait.server._errors import Handler, errors_middleware
from plait.server._hub import Hub
from plait.server._openapi import openapi
from plait.server._slow import slow_body_middleware

HUB = web.AppKey("hub", Hub)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def operations(hub: Hub) -> Api:
    api = Api()
    _routes_flows.install(api, hub)
    _routes_executions.install(api, hub)
    _logs_stream.install(api, hub)
    _routes_namespaces.install(api, hub)
    _routes_nsfiles.install(api, hub)
    _routes_secrets.install(api, hub)
    _routes_users.install(api, hub)
    _routes_system.install(api, hub)
    _routes_triggers.install(api, hub)
    _routes_blueprints.install(api, hub)
    _ui.install_api(api, hub)
    return api


def build_app(hub: Hub) -> web.Application:
    """The application; ``hub.attach`` must be called before it serves requests."""
    config = hub.config
    api = operations(hub)
    public = frozenset(
        [
            *config.public_paths,
            "/api/v1/openapi.json",
            *(o.path for o in api.operations if o.public),
        ]
    )
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[
            slow_body_middleware(config.client_timeout),
            _headers_middleware(config.cors_origins),
            hub.metrics.middleware(),
            errors_middleware,
            auth_middleware(
                lambda: hub.tokens,
                public,
                RateLimiter(config.rate_limit, config.rate_burst),
                lambda: (hub.users, hub.sessions, hub.throttle),
            ),
        ],
    )
    app[HUB] = hub
    public_ops = _routes_system.install_public(app, hub) + _webhooks.install(app, hub)
    api.install(app)
    _ui.install(app)
    document: dict[str, Any] = openapi(api.operations, public_ops)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/api/v1/openapi.json", openapi_json)
    return app


def _headers_middleware(origins: list[str]) -> Middleware:
    allowed = set(origins)

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        cors = origin is not None and ("*" in allowed or origin in allowed)
        if request.method == "OPTIONS" and cors:
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if not response.prepared:
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if cors and origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Vary"] = "Origin"
                response.headers["Access-Control-Allow-Headers"] = (
                    "Authorization, Content-Type, Last-Event-ID, X-CSRF-Token"
                )
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
        return response

    return headers
