"""API tokens: created once (only a SHA-256 hash is stored), checked on every request.

A token has a role (viewer < editor < admin) and may be limited to a namespace prefix: it sees
nothing outside it (404, as if it did not exist). A revoked token fails on its next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy import Connection, insert, select, update

from plait.records import new_id, utcnow
from plait.server._errors import ApiError, Handler
from plait.server._models import Role, TokenOut, aware
from plait.server._throttle import LoginThrottle
from plait.server._users import (
    CSRF_HEADER,
    SESSION_COOKIE,
    UNSAFE,
    Sessions,
    UserStore,
    csrf_ok,
)
from plait.storage import ChangeCache, SqlRepository, api_tokens

PREFIX = "plait_"
RANKS: dict[str, int] = {"viewer": 1, "editor": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's role and namespace scope."""

    token_id: str
    name: str
    role: Role
    namespace: str | None

    def sees(self, namespace: str) -> bool:
        scope = self.namespace
        return scope is None or namespace == scope or namespace.startswith(scope + ".")

    def at_least(self, role: Role) -> bool:
        return RANKS[self.role] >= RANKS[role]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """API tokens in the server's database."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo
        #: Valid tokens by hash, while the change counter stands still (a token created or
        #: revoked by any process moves it: a revoked token fails on its next request).
        self._valid: ChangeCache[str, Principal] = ChangeCache()

    async def create(self, name: str, role: Role, namespace: str | None = None) -> TokenOut:
        token = PREFIX + secrets.token_urlsafe(32)
        row = {
            "id": new_id(),
            "name": name,
            "role": role,
            "namespace": namespace or None,
            "token_hash": hash_token(token),
            "created": utcnow(),
            "revoked": None,
        }

        def run(conn: Connection) -> None:
            conn.execute(insert(api_tokens).values(**row))
            conn.commit()

        await self.repo.call(run)
        return TokenOut(
            id=row["id"], name=name, role=role, namespace=namespace, created=row["created"],
            token=token,
        )  # fmt: skip

    async def list(self) -> list[TokenOut]:
        def run(conn: Connection) -> list[TokenOut]:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()
            conn.commit()
            return [
                TokenOut(
                    id=r.id,
                    name=r.name,
                    role=r.role,
                    namespace=r.namespace,
                    created=aware(r.created),
                    revoked=aware(r.revoked) if r.revoked else None,
                )
                for r in rows
            ]

        return await self.repo.call(run)

    async def count_active(self) -> int:
        return sum(1 for t in await self.list() if t.revoked is None)

    async def revoke(self, token_id: str) -> bool:
        def run(conn: Connection) -> bool:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked.is_(None))
                .values(revoked=utcnow())
            ).rowcount
            conn.commit()
            return bool(done)

        return await self.repo.call(run)

    async def check(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token; ``None`` otherwise."""
        digest = hash_token(token)
        version = await self.repo.changes()
        known = self._valid.get(version, digest)
        if known is not None:
            return known

        def run(conn: Connection) -> Principal | None:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
            conn.commit()
            if row is None or row.revoked is not None:
                return None
            if not hmac.compare_digest(row.token_hash, digest):
                return None
            return Principal(row.id, row.name, row.role, row.namespace)

        found = await self.repo.call(run)
        if found is not None:
            self._valid.put(version, digest, found)
        return found


class RateLimiter:
    """A token bucket per API token: ``burst`` requests at once, ``rate`` a second after."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        level, last = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * self.rate)
        if level < 1:
            wait = math.ceil((1 - level) / self.rate)
            self._buckets[key] = (level, now)
            raise ApiError(
                429,
                f"too many requests for this token: at most {self.rate:g} a second "
                f"(burst {self.burst}); retry in {wait}s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[key] = (level - 1, now)


def auth_middleware(
    tokens: Callable[[], TokenStore],
    public: frozenset[str],
    limiter: RateLimiter | None = None,
    people: Callable[[], tuple[UserStore, Sessions, LoginThrottle]] | None = None,
) -> Middleware:
    """A bearer token, or (``people``) a user's basic auth or session cookie (with the CSRF
    header on unsafe methods)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # A handler marked ``public`` (the webhook endpoint) makes its own checks.
        marked = getattr(request.match_info.handler, "public", False)
        if request.path in public or request.method == "OPTIONS" or marked:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        principal: Principal
        if scheme == "bearer" and credential:
            found = await tokens().check(credential)
            if found is None:
                raise ApiError(401, "invalid or revoked API token")
            principal = found
        elif scheme == "basic" and credential and people is not None:
            users, _, throttle = people()
            principal = await _basic(users, throttle, credential, client_address(request))
        elif not header and people is not None and request.cookies.get(SESSION_COOKIE):
            principal = await _session(request, people()[1])
        else:
            raise ApiError(
                401,
                "an API token is required: Authorization: Bearer <token> (or a user's basic "
                "auth or session)",
                headers={"WWW-Authenticate": 'Bearer, Basic realm="plait"'},
            )
        if limiter is not None:
            limiter.check(principal.token_id)
        request["principal"] = principal
        return await handler(request)

    return middleware


def client_address(request: web.Request) -> str:
    """The peer's address (the server binds loopback or sits behind a proxy it was told of:
    no forwarded header is trusted)."""
    return request.remote or "unknown"


async def _basic(
    users: UserStore, throttle: LoginThrottle, credential: str, address: str
) -> Principal:
    try:
        name, sep, password = base64.b64decode(credential, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        name, sep, password = "", "", ""
    user = None
    if sep and name:
        user = await throttle.attempt(name, address, lambda: users.verify(name, password))
    if user is None:
        raise ApiError(
            401, "wrong user name or password", headers={"WWW-Authenticate": 'Basic realm="plait"'}
        )
    return Principal(f"user:{user.id}", user.name, user.role, user.namespace)


async def _session(request: web.Request, sessions: Sessions) -> Principal:
    session_id = request.cookies[SESSION_COOKIE]
    # One read: the session joined with its user as they are now (a deleted user's sessions
    # are gone with it, a password change closes them).
    session = await sessions.get(session_id)
    if session is None:
        raise ApiError(401, "the session has expired or was closed: log in again")
    if request.method in UNSAFE and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise ApiError(
            403,
            f"a request authenticated by the session cookie must send its CSRF token in the "
            f"{CSRF_HEADER} header (returned by the login)",
        )
    user = session.user
    request["session_id"] = session_id
    return Principal(f"user:{user.id}", user.name, user.role, user.namespace)


def principal_of(request: web.Request) -> Principal:
    found = request.get("principal")
    if not isinstance(found, Principal):
        raise ApiError(401, "an API token is required")
    return found
