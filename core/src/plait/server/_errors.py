"""API errors: one JSON shape, an error id that matches one server log line, no traceback."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from aiohttp import web
from plait_sdk import UserError

log = logging.getLogger("plait.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A client error with its HTTP status and a message a person can act on."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        problems: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def error_id() -> str:
    return secrets.token_hex(6)


def error_response(status: int, message: str, problems: list[str] | None = None) -> web.Response:
    from plait.server._models import ErrorBody

    ident = error_id()
    level = logging.WARNING if status < 500 else logging.ERROR
    log.log(level, "error %s: %s %s", ident, status, message.splitlines()[0] if message else "")
    body = ErrorBody(message=message, problems=problems or [], error_id=ident, status=status)
    return web.json_response(body.model_dump(mode="json", by_alias=True), status=status)


def validation_problems(error: pydantic.ValidationError, where: str) -> list[str]:
    out = []
    for e in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"])
        out.append(f"{where}: {loc}: {e['msg']}" if loc else f"{where}: {e['msg']}")
    return out


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as ``{"message", "problems", "errorId", "status"}``; 500s logged with the
    id and traceback on the server, never sent to the client."""
    try:
        return await handler(request)
    except ApiError as error:
        response = error_response(error.status, error.message, error.problems)
        response.headers.update(error.headers)
        return response
    except UserError as error:
        return error_response(422, str(error), [str(error)])
    except web.HTTPRequestEntityTooLarge as error:
        return error_response(413, f"request body too large: {error.text or ''}".strip())
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = error_response(error.status, error.reason)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception as error:
        ident = error_id()
        log.error("error %s: 500 on %s %s: %s", ident, request.method, request.path, _brief(error))
        log.debug("error %s traceback", ident, exc_info=True)
        from plait.server._models import ErrorBody

        body = ErrorBody(
            message="internal server error (see the server log for this error id)",
            error_id=ident,
            status=500,
        )
        return web.json_response(body.model_dump(mode="json", by_alias=True), status=500)


def _brief(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:300]


def problems_of(errors: list[Any]) -> list[str]:
    return [str(e) for e in errors]
