"""Slow clients: a request body that stops arriving is cut after ``client_timeout`` seconds.

(Headers that do not arrive in time are cut by aiohttp's keep-alive timer, which the server sets
to the same ``client_timeout``: it closes a connection still waiting for a complete request.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp.typedefs import Middleware

from plait.server._errors import Handler

log = logging.getLogger("plait.server")


def slow_body_middleware(timeout: float) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if timeout <= 0 or not request.body_exists or request.content.is_eof():
            return await handler(request)
        watch = asyncio.create_task(_watch(request, seconds=timeout))
        try:
            return await handler(request)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    return guard


async def _watch(request: web.Request, *, seconds: float) -> None:
    """Close the connection when no byte of the body arrived for ``seconds``."""
    seen = -1
    while not request.content.is_eof():
        now = request.content.total_bytes
        if now == seen:
            log.warning(
                "a client stalled its request body for %gs (%s %s, %d bytes received): "
                "connection closed", seconds, request.method, request.path, now,
            )  # fmt: skip
            if request.transport is not None:
                request.transport.close()
            return
        seen = now
        await asyncio.sleep(seconds)
