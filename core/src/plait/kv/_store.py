"""The namespaced, typed key-value store in the Plait database (Kestra's KV store).

Each value is stored as JSON text with its type, so a datetime comes back as a datetime and a
duration as a duration; an optional TTL makes a key expire (expired keys read as missing and
are removed lazily).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from plait_sdk import KeyValueStore, UserError
from sqlalchemy import Connection, and_, delete, insert, or_, select

from plait.records import utcnow
from plait.storage import SqlRepository, kv
from plait.templating import format_duration

TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise UserError(f"invalid KV key {key!r}: letters, digits, '_', '.', '-', '/' (max 255)")
    return key


def infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, timedelta):
        return "DURATION"
    if isinstance(value, str):
        return "STRING"
    return "JSON"


def encode(value: Any, kind: str) -> str:
    """``value`` as the JSON text stored for ``kind`` (converting text for typed kinds)."""
    from plait.flows import Input, InputError, InputType, coerce_value

    if kind not in TYPES:
        raise UserError(f"unknown KV type {kind!r}; one of {', '.join(TYPES)}")
    try:
        if kind == "STRING":
            plain: Any = value if isinstance(value, str) else json.dumps(value, default=str)
        elif kind == "NUMBER":
            plain = value if isinstance(value, int | float) else float(value)
            if isinstance(plain, bool):
                raise ValueError("a boolean is not a number")
        elif kind == "BOOLEAN":
            plain = coerce_value(Input(id="v", type=InputType.BOOLEAN), value)
        elif kind == "DATETIME":
            plain = coerce_value(Input(id="v", type=InputType.DATETIME), value).isoformat()
        elif kind == "DATE":
            plain = coerce_value(Input(id="v", type=InputType.DATE), value).isoformat()
        elif kind == "DURATION":
            plain = format_duration(coerce_value(Input(id="v", type=InputType.DURATION), value))
        else:
            plain = json.loads(value) if isinstance(value, str) else value
        return json.dumps(plain)
    except (InputError, ValueError, TypeError) as error:
        raise UserError(f"KV value {value!r} is not a valid {kind}: {error}") from None


def plain_value(value: Any) -> Any:
    """A JSON-friendly form of a typed value: dates as ISO-8601 text, durations as ``PT…``."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def decode(text: str, kind: str) -> Any:
    from plait.flows import Input, InputType, coerce_value

    plain = json.loads(text)
    if kind == "DATETIME":
        return datetime.fromisoformat(plain)
    if kind == "DATE":
        return date.fromisoformat(plain)
    if kind == "DURATION":
        return coerce_value(Input(id="v", type=InputType.DURATION), plain)
    return plain


class KVStore:
    """Typed values by (namespace, key), with optional expiry."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        type: str | None = None,
        ttl: timedelta | None = None,
        overwrite: bool = True,
    ) -> None:
        check_key(key)
        kind = (type or infer_type(value)).upper()
        text = encode(value, kind)
        now = utcnow()
        expires = now + ttl if ttl is not None else None
        where = and_(kv.c.namespace == namespace, kv.c.key == key)

        def run(conn: Connection) -> None:
            if not overwrite:
                existing = conn.execute(select(kv.c.expires).where(where)).first()
                if existing is not None and not _expired(existing[0], now):
                    conn.rollback()
                    raise UserError(f"KV key {namespace}/{key} exists and overwrite is false")
            conn.execute(delete(kv).where(where))
            conn.execute(
                insert(kv).values(
                    namespace=namespace,
                    key=key,
                    type=kind,
                    value=text,
                    updated=now,
                    expires=expires,
                )
            )
            conn.commit()

        await self.repo.call(run)

    async def entry(self, namespace: str, key: str) -> tuple[str, Any, datetime | None] | None:
        """(type, value, expires) of a live key, or ``None``."""
        check_key(key)
        now = utcnow()
        where = and_(kv.c.namespace == namespace, kv.c.key == key)

        def run(conn: Connection) -> tuple[str, str, datetime | None] | None:
            row = conn.execute(select(kv.c.type, kv.c.value, kv.c.expires).where(where)).first()
            if row is not None and _expired(row[2], now):
                conn.execute(delete(kv).where(where))
                row = None
            conn.commit()
            return (row[0], row[1], row[2]) if row else None

        found = await self.repo.call(run)
        if found is None:
            return None
        kind, text, expires = found
        return kind, decode(text, kind), expires

    async def get(self, namespace: str, key: str) -> Any:
        found = await self.entry(namespace, key)
        return None if found is None else found[1]

    async def delete(self, namespace: str, key: str) -> bool:
        check_key(key)

        def run(conn: Connection) -> bool:
            result = conn.execute(
                delete(kv).where(and_(kv.c.namespace == namespace, kv.c.key == key))
            )
            conn.commit()
            return bool(result.rowcount)

        return await self.repo.call(run)

    async def keys(self, namespace: str, prefix: str = "") -> list[tuple[str, str, datetime]]:
        """(key, type, updated) of the live keys starting with ``prefix``."""
        now = utcnow()
        query = (
            select(kv.c.key, kv.c.type, kv.c.updated)
            .where(kv.c.namespace == namespace)
            .where(or_(kv.c.expires.is_(None), kv.c.expires > now))
            .order_by(kv.c.key)
        )
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(kv.c.key.like(escaped + "%", escape="\\"))

        def run(conn: Connection) -> list[tuple[str, str, datetime]]:
            rows = conn.execute(query).all()
            conn.commit()
            return [(r[0], r[1], r[2]) for r in rows]

        return await self.repo.call(run)


class ScopedKV(KeyValueStore):
    """The store as a task sees it: the flow's namespace unless told otherwise."""

    def __init__(self, store: KVStore, namespace: str) -> None:
        self._store = store
        self._namespace = namespace

    async def get(self, key: str, *, namespace: str | None = None) -> Any:
        return await self._store.get(namespace or self._namespace, key)

    async def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: str | None = None,
        ttl: timedelta | None = None,
        type: str | None = None,
        overwrite: bool = True,
    ) -> None:
        await self._store.set(
            namespace or self._namespace, key, value, type=type, ttl=ttl, overwrite=overwrite
        )

    async def delete(self, key: str, *, namespace: str | None = None) -> bool:
        return await self._store.delete(namespace or self._namespace, key)

    async def keys(self, prefix: str = "", *, namespace: str | None = None) -> list[str]:
        return [k for k, _, _ in await self._store.keys(namespace or self._namespace, prefix)]


def _expired(expires: datetime | None, now: datetime) -> bool:
    if expires is None:
        return False
    if expires.tzinfo is None:  # SQLite returns naive datetimes
        expires = expires.replace(tzinfo=now.tzinfo)
    return expires <= now
