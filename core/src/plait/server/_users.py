"""People: users with Argon2id password hashes, HTTP basic auth, and a session cookie.

A session cookie (``plait_session``: HttpOnly, SameSite=Strict, Path=/api) is only half of a
cookie-authenticated unsafe request: POST/PUT/PATCH/DELETE must also carry the session's CSRF
token in the ``X-CSRF-Token`` header (returned by the login, never stored in a cookie the
server reads back), which another site's page cannot read or send.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from plait_sdk import UserError
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from plait.engine._model import new_id, utcnow
from plait.server._models import Role
from plait.storage import SqlRepository
from plait.storage._tables import users

SESSION_COOKIE = "plait_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIN_PASSWORD = 12

_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 "low memory" profile


@functools.cache
def _dummy() -> str:
    """Verified when the user does not exist, so a wrong name costs as long as a wrong
    password. Made on first use, in the verifying thread: hashing it at import cost every
    server start (and every CLI command importing the server) one Argon2 hash, 64 MiB of
    memory and ~0.1 s."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: Role
    namespace: str | None


@dataclass
class Session:
    user: User
    csrf: str
    expires: float


class UserStore:
    """Users in the server's database."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    async def create(
        self, name: str, role: Role, password: str, namespace: str | None = None
    ) -> User:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
        digest = await asyncio.to_thread(_hasher.hash, password)
        user = User(new_id(), name, role, namespace or None)

        def run(conn: Connection) -> None:
            conn.execute(
                insert(users).values(
                    id=user.id, name=name, role=role, namespace=user.namespace,
                    password_hash=digest, created=utcnow(),
                )
            )  # fmt: skip
            conn.commit()

        try:
            await self.repo.call(run)
        except IntegrityError:
            raise UserError(f"a user named {name!r} already exists") from None
        return user

    async def list(self) -> list[User]:
        def run(conn: Connection) -> list[User]:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
            conn.commit()
            return [User(r.id, r.name, r.role, r.namespace) for r in rows]

        return await self.repo.call(run)

    async def delete(self, name: str) -> bool:
        def run(conn: Connection) -> bool:
            done = conn.execute(delete(users).where(users.c.name == name)).rowcount
            conn.commit()
            return bool(done)

        return await self.repo.call(run)

    async def get(self, user_id: str) -> User | None:
        def run(conn: Connection) -> User | None:
            r = conn.execute(select(users).where(users.c.id == user_id)).first()
            conn.commit()
            return User(r.id, r.name, r.role, r.namespace) if r else None

        return await self.repo.call(run)

    async def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs; ``None`` otherwise (in the same time)."""

        def run(conn: Connection) -> tuple[User, str] | None:
            r = conn.execute(select(users).where(users.c.name == name)).first()
            conn.commit()
            return (User(r.id, r.name, r.role, r.namespace), r.password_hash) if r else None

        found = await self.repo.call(run)
        try:
            await asyncio.to_thread(
                lambda: _hasher.verify(found[1] if found else _dummy(), password)
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return found[0] if found else None


class Sessions:
    """Login sessions of this process (a restart logs everyone out)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._by_id: dict[str, Session] = {}

    def open(self, user: User) -> tuple[str, Session]:
        self._expire()
        session_id = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.ttl)
        self._by_id[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        session = self._by_id.get(session_id)
        if session is None or session.expires < time.monotonic():
            self._by_id.pop(session_id, None)
            return None
        return session

    def close(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def close_user(self, user_id: str) -> None:
        for key in [k for k, s in self._by_id.items() if s.user.id == user_id]:
            del self._by_id[key]

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._by_id.items() if s.expires < now]:
            del self._by_id[key]


def csrf_ok(session: Session, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(session.csrf.encode(), header.encode())
