"""Login and logout of people (users created with ``plait auth user create``)."""

from __future__ import annotations

from aiohttp import web
from plait_sdk import Model
from pydantic import Field

from plait.server._api import Api, Call
from plait.server._auth import client_address
from plait.server._errors import ApiError
from plait.server._hub import Hub
from plait.server._models import Role
from plait.server._users import SESSION_COOKIE


class Login(Model):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class Me(Model):
    """Who is calling; after a login, the CSRF token to send as ``X-CSRF-Token`` with every
    POST, PUT, PATCH and DELETE authenticated by the session cookie."""

    name: str
    role: Role
    namespace: str | None = None
    csrf_token: str | None = None


class LoggedOut(Model):
    logged_out: bool = True


def install(api: Api, hub: Hub) -> None:
    @api.route(
        "POST",
        "/api/v1/auth/login",
        summary="Log in with a user name and password: sets the session cookie (HttpOnly, "
        "SameSite=Strict) and returns the CSRF token.",
        role="viewer",
        tag="auth",
        body=Login,
        response=Me,
        public=True,
        errors=(400, 401, 422, 429),
    )
    async def login(call: Call) -> web.StreamResponse:
        body: Login = call.body
        name, password = body.username, body.password
        address = client_address(call.request)
        user = await hub.throttle.attempt(name, address, lambda: hub.users.verify(name, password))
        if user is None:
            raise ApiError(401, "wrong user name or password")
        session_id, csrf = await hub.sessions.open(user)
        me = Me(name=user.name, role=user.role, namespace=user.namespace, csrf_token=csrf)
        response = web.json_response(me.model_dump(mode="json", by_alias=True))
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(hub.config.session_ttl),
            path="/api",
            httponly=True,
            samesite="Strict",
            secure=hub.config.cookie_secure,
        )
        return response

    @api.route(
        "POST",
        "/api/v1/auth/logout",
        summary="Close the caller's session (the cookie stops working at once).",
        role="viewer",
        tag="auth",
        response=LoggedOut,
    )
    async def logout(call: Call) -> web.StreamResponse:
        session_id = call.request.get("session_id")
        if isinstance(session_id, str):
            await hub.sessions.close(session_id)
        response = web.json_response(LoggedOut().model_dump(mode="json", by_alias=True))
        response.del_cookie(SESSION_COOKIE, path="/api")
        return response

    @api.route(
        "GET",
        "/api/v1/auth/me",
        summary="Who is calling (token, user or session).",
        role="viewer",
        tag="auth",
        response=Me,
    )
    async def whoami(call: Call) -> Me:
        p = call.principal
        return Me(name=p.name, role=p.role, namespace=p.namespace)
