"""A real aiohttp server on 127.0.0.1 that the tests call: echo, auth, redirects, slow, big..."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections import Counter
from typing import Any

from aiohttp import web

USER, PASSWORD = "ada", "s3cret-pa55word"
TOKEN = "tok-4f9a8b7c6d5e"
CHUNK = b"x" * (64 * 1024)


class State:
    """What the server saw, for assertions, and the event that releases slow handlers."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.seen: list[dict[str, Any]] = []


STATE = web.AppKey("state", State)


async def _echo(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["echo"] += 1
    data: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": [[k, v] for k, v in request.query.items()],
        "headers": {k: v for k, v in request.headers.items()},
        "host": request.headers.get("Host"),
    }
    content_type = request.content_type
    if content_type == "multipart/form-data":
        parts = []
        reader = await request.multipart()
        async for part in reader:
            payload = await part.read()  # type: ignore[union-attr]
            parts.append(
                {
                    "name": part.name,
                    "filename": part.filename,
                    "contentType": part.headers.get("Content-Type"),
                    "size": len(payload),
                    "sha256": hashlib.sha256(payload).hexdigest(),
                    "text": payload.decode("utf-8", "replace")[:200],
                }
            )
        data["parts"] = parts
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        data["form"] = [[k, str(v)] for k, v in form.items()]
    else:
        data["body"] = (await request.read()).decode("utf-8", "replace")
    data["contentType"] = request.headers.get("Content-Type")
    state.seen.append(data)
    return web.json_response(data)


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world", "items": [1, 2, 3]})


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="héllo wörld", content_type="text/plain", charset="utf-8")


async def _binary(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 4, content_type="application/octet-stream")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    size = int(request.query.get("size", "0"))
    text = f"error body for {code}" + (" padding" * size)
    return web.Response(status=code, text=text)


async def _redirect(request: web.Request) -> web.Response:
    """``/redirect?to=URL&status=302``: one redirect to ``to``."""
    state = request.app[STATE]
    state.hits["redirect"] += 1
    status = int(request.query.get("status", "302"))
    return web.Response(status=status, headers={"Location": request.query["to"]})


async def _chain(request: web.Request) -> web.Response:
    """``/chain/N``: N redirects, then the echo."""
    n = int(request.match_info["n"])
    target = f"/chain/{n - 1}" if n > 1 else "/echo"
    raise web.HTTPFound(target)


async def _slow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    seconds = float(request.query.get("seconds", "30"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.release.wait(), seconds)
    return web.Response(text="finally")


async def _stall(request: web.Request) -> web.StreamResponse:
    """Headers and 100 KB of body at once, then nothing until released."""
    state = request.app[STATE]
    response = web.StreamResponse(headers={"Content-Length": "1000000"})
    await response.prepare(request)
    await response.write(b"y" * 100_000)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.release.wait(), 30)
    return response


async def _big(request: web.Request) -> web.StreamResponse:
    """``/big?size=N``: N bytes of ``x``, streamed in 64 KiB chunks with a Content-Length."""
    size = int(request.query["size"])
    response = web.StreamResponse(
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    )
    await response.prepare(request)
    left = size
    while left > 0:
        piece = CHUNK if left >= len(CHUNK) else CHUNK[:left]
        await response.write(piece)
        left -= len(piece)
    await response.write_eof()
    return response


async def _big_json(request: web.Request) -> web.Response:
    items = int(request.query.get("items", "100000"))
    return web.json_response({"items": list(range(items))})


async def _basic(request: web.Request) -> web.Response:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.Response(status=401, text="bad credentials")
    return web.json_response({"user": USER})


async def _bearer(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization", "")
    if header != f"Bearer {TOKEN}":
        return web.Response(status=401, text="bad token")
    # echo the credential back, as some APIs do: outputs and logs must still mask it
    return web.json_response({"ok": True, "echo": header})


async def _named(request: web.Request) -> web.Response:
    return web.Response(
        body=b"a,b\n1,2\n",
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="report 2024.csv"'},
    )


async def _empty(request: web.Request) -> web.Response:
    return web.Response(status=200, body=b"")


async def _counter(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["counter"] += 1
    count = state.hits["counter"]
    return web.json_response({"count": count, "ready": count >= 2, "price": 120 - 10 * count})


async def _flaky_status(request: web.Request) -> web.Response:
    return web.Response(status=503, text=json.dumps({"down": True}), content_type="text/plain")


def make_app(state: State) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/echo/{tail:.*}", _echo)
    app.router.add_get("/json", _json)
    app.router.add_get("/text", _text)
    app.router.add_get("/binary", _binary)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_route("*", "/redirect", _redirect)
    app.router.add_get("/chain/{n}", _chain)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/stall", _stall)
    app.router.add_get("/big-json", _big_json)
    app.router.add_get("/auth/basic", _basic)
    app.router.add_get("/auth/bearer", _bearer)
    app.router.add_get("/named", _named)
    app.router.add_get("/empty", _empty)
    app.router.add_get("/counter", _counter)
    app.router.add_get("/down", _flaky_status)
    return app
