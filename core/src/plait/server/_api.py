"""Typed operations: each handler declares its query, body and response models.

The wrapper parses and validates the request into those models (422 with every problem when it
does not fit) and checks the caller's role; :mod:`plait.server._openapi` builds the OpenAPI
document from the same declarations, so the document cannot drift from the handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from aiohttp import web
from multidict import MultiMapping

from plait.server._auth import Principal, principal_of
from plait.server._errors import ApiError, validation_problems
from plait.server._models import Role

BodyKind = Literal["json", "yaml", "inputs", "file"]
Result = pydantic.BaseModel | web.StreamResponse


@dataclass
class Call:
    """What a handler gets: the request, the caller and the parsed query and body."""

    request: web.Request
    principal: Principal
    query: Any = None
    body: Any = None

    def match(self, name: str) -> str:
        return self.request.match_info[name]


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    role: Role
    handler: Callable[[Call], Awaitable[Result]]
    tag: str
    query: type[pydantic.BaseModel] | None = None
    body: type[pydantic.BaseModel] | None = None
    body_kind: BodyKind | None = None
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    produces: str = "application/json"
    errors: tuple[int, ...] = (400, 401, 404, 422)
    extra: dict[str, Any] = field(default_factory=dict)
    public: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Api:
    """The registry of operations, installed on an aiohttp application."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        role: Role,
        tag: str,
        query: type[pydantic.BaseModel] | None = None,
        body: type[pydantic.BaseModel] | None = None,
        body_kind: BodyKind | None = None,
        response: type[pydantic.BaseModel] | None = None,
        status: int = 200,
        produces: str = "application/json",
        errors: tuple[int, ...] = (400, 401, 404, 422),
        public: bool = False,
    ) -> Callable[[Callable[[Call], Awaitable[Result]]], Callable[[Call], Awaitable[Result]]]:
        def register(
            handler: Callable[[Call], Awaitable[Result]],
        ) -> Callable[[Call], Awaitable[Result]]:
            self.operations.append(
                Operation(
                    method,
                    path,
                    summary,
                    role,
                    handler,
                    tag,
                    query,
                    body,
                    body_kind or ("json" if body is not None else None),
                    response,
                    status,
                    produces,
                    errors,
                    public=public,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        # A literal segment wins over a variable one (``/executions/{id}/resume`` before
        # ``/executions/{namespace}/{flowId}``, ``/flows/search`` before ``/flows/{namespace}``).
        for op in sorted(self.operations, key=_literal_segments, reverse=True):
            app.router.add_route(op.method, op.path, _wrap(op), name=op.operation_id)


ANONYMOUS = Principal("", "anonymous", "viewer", None)


def _literal_segments(op: Operation) -> int:
    return sum(1 for part in op.path.split("/") if part and not part.startswith("{"))


def _wrap(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = ANONYMOUS if op.public else principal_of(request)
        if not principal.at_least(op.role):
            raise ApiError(
                403, f"this operation needs the {op.role} role (token has {principal.role})"
            )
        call = Call(request, principal)
        if op.query is not None:
            call.query = parse_query(op.query, request.query)
        if op.body_kind == "json" and op.body is not None:
            call.body = await parse_json(op.body, request)
        result = await op.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result.model_dump(mode="json", by_alias=True), status=op.status)

    handle.__name__ = op.operation_id
    return handle


def parse_query(model: type[pydantic.BaseModel], query: MultiMapping[str]) -> Any:
    data: dict[str, Any] = {}
    lists = {
        (info.alias or name)
        for name, info in model.model_fields.items()
        if getattr(info.annotation, "__origin__", None) is list
    }
    for key in query:
        if key in data:
            continue
        values = query.getall(key)
        data[key] = values if key in lists else values[-1]
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ApiError(
            400, "invalid query parameters", problems=validation_problems(error, "query")
        ) from None


async def parse_json(model: type[pydantic.BaseModel], request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "this operation needs a JSON body")
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as error:
        problems = validation_problems(error, "body")
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise ApiError(400, "the body is not valid JSON", problems=problems) from None
        raise ApiError(
            422, "the body does not match the expected shape", problems=problems
        ) from None


def check_id(value: str, what: str) -> str:
    """A namespace, flow id or execution id from a path: no path characters."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}", value) or ".." in value:
        raise ApiError(400, f"invalid {what} {value!r}: letters, digits, '_', '-' and '.' only")
    return value
