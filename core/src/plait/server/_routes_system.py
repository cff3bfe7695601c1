"""Health, readiness, metrics, the OpenAPI document and API tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._models import Deleted, Health, TokenCreate, TokenList, TokenOut
from plait.storage import SCHEMA_HEAD, current_revision


def install_public(app: web.Application, hub: Hub) -> list[dict[str, Any]]:
    """The routes served without a token; their OpenAPI entries."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response(Health(status="UP").model_dump(mode="json", exclude_none=True))

    async def ready(request: web.Request) -> web.Response:
        def check(conn: Connection) -> str | None:
            current = current_revision(conn)
            conn.commit()
            return current

        try:
            current = await hub.repo.call(check)
        except Exception as error:  # the database is not reachable: not ready
            body = Health(status="DOWN", database=f"{type(error).__name__}")
            return web.json_response(body.model_dump(mode="json", exclude_none=True), status=503)
        up = current == SCHEMA_HEAD and hub.accepting
        body = Health(status="UP" if up else "DOWN", database="UP", migrations=current)
        return web.json_response(body.model_dump(mode="json"), status=200 if up else 503)

    async def metrics(request: web.Request) -> web.Response:
        return hub.metrics.render()

    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    health_ref = {"$ref": "#/components/schemas/Health"}
    return [
        {
            "path": path,
            "operation": {
                "operationId": name,
                "summary": summary,
                "tags": ["system"],
                "security": [],
                "responses": {
                    "200": {"description": "OK", "content": {kind: {"schema": schema}}},
                    **(
                        {"503": {"description": "Not ready", "content": {kind: {"schema": schema}}}}
                        if name == "ready"
                        else {}
                    ),
                },
            },
        }
        for path, name, summary, kind, schema in (
            ("/health", "health", "The process is alive.", "application/json", health_ref),
            ("/ready", "ready", "The database is reachable and migrated.", "application/json",
             health_ref),
            ("/metrics", "metrics", "Prometheus metrics.", "text/plain", {"type": "string"}),
        )
    ]  # fmt: skip


def _within(call: Call, token: TokenOut) -> bool:
    """A token limited to a namespace manages only tokens limited to it or below."""
    if call.principal.namespace is None:
        return True
    return token.namespace is not None and call.principal.sees(token.namespace)


def install(api: Api, hub: Hub) -> None:
    @api.route(
        "GET",
        "/api/v1/tokens",
        summary="API tokens (never their secret).",
        role="admin",
        tag="auth",
        response=TokenList,
    )
    async def list_tokens(call: Call) -> TokenList:
        return TokenList(results=[t for t in await hub.tokens.list() if _within(call, t)])

    @api.route(
        "POST",
        "/api/v1/tokens",
        summary="Create an API token: the response holds the token, shown this once.",
        role="admin",
        tag="auth",
        body=TokenCreate,
        response=TokenOut,
        status=201,
    )
    async def create_token(call: Call) -> TokenOut:
        body: TokenCreate = call.body
        scope = call.principal.namespace
        if scope is not None and (
            body.namespace is None or not call.principal.sees(body.namespace)
        ):
            raise ApiError(
                403,
                f"this token is limited to {scope}: it can only create tokens limited to "
                f"{scope} or a namespace under it",
            )
        return await hub.tokens.create(body.name, body.role, body.namespace)

    @api.route(
        "DELETE",
        "/api/v1/tokens/{tokenId}",
        summary="Revoke an API token (takes effect on its next request).",
        role="admin",
        tag="auth",
        response=Deleted,
    )
    async def revoke_token(call: Call) -> Deleted:
        token_id = check_id(call.match("tokenId"), "token id")
        found = [t for t in await hub.tokens.list() if t.id == token_id and _within(call, t)]
        if not found or not await hub.tokens.revoke(token_id):
            raise not_found(f"token {token_id}")
        return Deleted()
