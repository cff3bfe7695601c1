"""People: users with Argon2id password hashes, HTTP basic auth, and a session cookie.

Sessions live in the database (``sessions``, hashed ids only), so they survive a restart and are
shared by the server processes on one database. A session cookie (``plait_session``: HttpOnly,
SameSite=Strict, Path=/api) is only half of a
cookie-authenticated unsafe request: POST/PUT/PATCH/DELETE must also carry the session's CSRF
token in the ``X-CSRF-Token`` header (returned by the login, never stored in a cookie the
server reads back), which another site's page cannot read or send.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from plait_sdk import UserError
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from plait.records import new_id, utcnow
from plait.server._models import Role
from plait.storage import SqlRepository, sessions, users

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
    #: SHA-256 of the session's CSRF token (the token itself is given once, at login).
    csrf_hash: str
    expires: datetime


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
        """Delete the user and, in the same transaction, their sessions."""

        def run(conn: Connection) -> bool:
            ids = select(users.c.id).where(users.c.name == name).scalar_subquery()
            conn.execute(delete(sessions).where(sessions.c.user_id == ids))
            done = conn.execute(delete(users).where(users.c.name == name)).rowcount
            conn.commit()
            return bool(done)

        return await self.repo.call(run)

    async def set_password(self, name: str, password: str) -> bool:
        """Give the user a new password and close every session of theirs (one transaction):
        whoever logged in with the old one is logged out. Whether the user exists."""
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
        digest = await asyncio.to_thread(_hasher.hash, password)

        def run(conn: Connection) -> bool:
            ids = select(users.c.id).where(users.c.name == name).scalar_subquery()
            conn.execute(delete(sessions).where(sessions.c.user_id == ids))
            done = conn.execute(
                update(users).where(users.c.name == name).values(password_hash=digest)
            ).rowcount
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
    """Login sessions in the database, so a restart keeps people logged in and every server
    process on the database shares them. Only SHA-256 digests of the session id (the cookie)
    and of its CSRF token are stored: the table alone logs nobody in."""

    def __init__(self, repo: SqlRepository, ttl: float) -> None:
        self.repo = repo
        self.ttl = ttl

    async def open(self, user: User) -> tuple[str, str]:
        """A new session of ``user``: its id (the cookie) and its CSRF token."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()

        def run(conn: Connection) -> None:
            conn.execute(delete(sessions).where(sessions.c.expires <= now))  # the expired
            conn.execute(
                insert(sessions).values(
                    id_hash=digest_of(session_id), user_id=user.id, csrf_hash=digest_of(csrf),
                    created=now, expires=now + timedelta(seconds=self.ttl),
                )
            )  # fmt: skip
            conn.commit()

        await self.repo.call(run)
        return session_id, csrf

    async def get(self, session_id: str) -> Session | None:
        """The session and its user as they are now; ``None`` once expired, closed, or its
        user deleted or given a new password."""
        now = utcnow()
        query = (
            select(users, sessions.c.csrf_hash, sessions.c.expires)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id_hash == digest_of(session_id), sessions.c.expires > now)
        )

        def run(conn: Connection) -> Session | None:
            r = conn.execute(query).first()
            conn.commit()
            if r is None:
                return None
            return Session(User(r.id, r.name, r.role, r.namespace), r.csrf_hash, r.expires)

        return await self.repo.call(run)

    async def close(self, session_id: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(delete(sessions).where(sessions.c.id_hash == digest_of(session_id)))
            conn.commit()

        await self.repo.call(run)


def digest_of(secret: str) -> str:
    """How a session id or CSRF token is stored: SHA-256, hex (the secrets are 256 random
    bits, so a fast digest is enough: there is nothing to guess)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_ok(session: Session, header: str | None) -> bool:
    if header is None:
        return False
    return hmac.compare_digest(session.csrf_hash.encode(), digest_of(header).encode())
