"""The encrypted secret store: values sealed with the key ring, kept in the backend database.

Only ciphertext reaches the database. Each row holds the id of the key that sealed it, so a
rotation can re-encrypt row by row while every known key still opens the others, and a key is
never dropped while a row still needs it. Reads are audited (execution, task, namespace, name;
never the value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from plait_sdk import SecretBackend, UserError
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from plait.records import utcnow
from plait.secrets._backends import check_name, namespace_chain
from plait.secrets._crypto import KeyRing, Sealed
from plait.storage import SqlRepository, secret_reads, secrets

NAMESPACE_PATTERN_HINT = "letters, digits, '_', '-' separated by dots"


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown about a stored secret: never its value."""

    namespace: str
    name: str
    key_id: str
    updated: datetime


@dataclass(frozen=True)
class SecretRead:
    """One audited read."""

    execution_id: str | None
    task_id: str | None
    namespace: str
    name: str
    timestamp: datetime


def check_namespace(namespace: str) -> str:
    parts = namespace.split(".") if isinstance(namespace, str) else [""]
    if not all(p and all(c.isalnum() or c in "_-" for c in p) for p in parts):
        raise UserError(f"invalid namespace {namespace!r}: {NAMESPACE_PATTERN_HINT}")
    return namespace


class SecretStore(SecretBackend):
    """Secrets encrypted at rest in the Plait database, looked up with namespace inheritance."""

    def __init__(
        self,
        repo: SqlRepository,
        ring: KeyRing,
        *,
        reload: Callable[[], KeyRing] | None = None,
    ) -> None:
        self.repo = repo
        self.ring = ring
        self._reload = reload

    def _open(self, namespace: str, name: str, sealed: Sealed) -> bytes:
        if sealed.key_id not in self.ring and self._reload is not None:
            # Another process rotated the key: its new key is in the key file by now.
            self.ring = self._reload()
        return self.ring.open(namespace, name, sealed)

    async def set(self, namespace: str, name: str, value: str | bytes) -> None:
        """Create or replace ``namespace/name`` (sealed under the primary key)."""
        check_namespace(namespace)
        check_name(name)
        raw = value.encode() if isinstance(value, str) else value
        sealed = self.ring.seal(namespace, name, raw)
        now = utcnow()

        def run(conn: Connection) -> None:
            where = and_(secrets.c.namespace == namespace, secrets.c.name == name)
            conn.execute(delete(secrets).where(where))
            conn.execute(
                insert(secrets).values(
                    namespace=namespace,
                    name=name,
                    key_id=sealed.key_id,
                    ciphertext=sealed.blob,
                    updated=now,
                )
            )
            conn.commit()

        await self.repo.call(run)

    async def get_exact(self, namespace: str, name: str) -> bytes | None:
        """The value stored at exactly ``namespace/name`` (no inheritance)."""

        def run(conn: Connection) -> tuple[str, bytes] | None:
            row = conn.execute(
                select(secrets.c.key_id, secrets.c.ciphertext).where(
                    and_(secrets.c.namespace == namespace, secrets.c.name == name)
                )
            ).first()
            conn.commit()
            return (row[0], bytes(row[1])) if row else None

        found = await self.repo.call(run)
        if found is None:
            return None
        return self._open(namespace, name, Sealed(*found))

    async def get(self, namespace: str, name: str) -> str | None:
        """The nearest value: ``a.b.c`` looks in ``a.b.c``, then ``a.b``, then ``a``."""
        check_name(name)
        chain = namespace_chain(namespace)

        def run(conn: Connection) -> list[tuple[str, str, bytes]]:
            rows = conn.execute(
                select(secrets.c.namespace, secrets.c.key_id, secrets.c.ciphertext).where(
                    and_(secrets.c.name == name, secrets.c.namespace.in_(chain))
                )
            ).all()
            conn.commit()
            return [(r[0], r[1], bytes(r[2])) for r in rows]

        rows = {ns: (key_id, blob) for ns, key_id, blob in await self.repo.call(run)}
        for ns in chain:
            if ns in rows:
                raw = self._open(ns, name, Sealed(*rows[ns]))
                try:
                    return raw.decode()
                except UnicodeDecodeError:
                    raise UserError(
                        f"secret {ns}/{name} is binary; templates can only use text secrets"
                    ) from None
        return None

    async def names(self, namespace: str | None = None) -> list[SecretInfo]:
        """Names and metadata, sorted; with a namespace, that namespace and its children."""
        query = select(secrets.c.namespace, secrets.c.name, secrets.c.key_id, secrets.c.updated)
        if namespace:
            query = query.where(
                (secrets.c.namespace == namespace)
                | secrets.c.namespace.like(namespace.replace("%", r"\%") + ".%", escape="\\")
            )

        def run(conn: Connection) -> list[SecretInfo]:
            rows = conn.execute(query.order_by(secrets.c.namespace, secrets.c.name)).all()
            conn.commit()
            return [SecretInfo(*row) for row in rows]

        return await self.repo.call(run)

    async def delete(self, namespace: str, name: str) -> bool:
        def run(conn: Connection) -> bool:
            result = conn.execute(
                delete(secrets).where(
                    and_(secrets.c.namespace == namespace, secrets.c.name == name)
                )
            )
            conn.commit()
            return bool(result.rowcount)

        return await self.repo.call(run)

    # -- keys ------------------------------------------------------------------------------------

    async def keys_in_use(self) -> dict[str, int]:
        """Key id -> number of values sealed with it."""

        def run(conn: Connection) -> dict[str, int]:
            rows = conn.execute(
                select(secrets.c.key_id, func.count()).group_by(secrets.c.key_id)
            ).all()
            conn.commit()
            return {str(k): int(n) for k, n in rows}

        return await self.repo.call(run)

    async def reseal_all(self, batch: int = 100) -> int:
        """Re-encrypt every value not sealed with the primary key; returns how many changed.

        Online: each row is swapped only if it still holds the ciphertext that was read, so a
        concurrent ``set`` wins and readers never see a half-written value.
        """
        primary = self.ring.primary_id
        changed = 0
        while True:

            def pending(conn: Connection) -> list[tuple[str, str, str, bytes]]:
                rows = conn.execute(
                    select(
                        secrets.c.namespace, secrets.c.name, secrets.c.key_id, secrets.c.ciphertext
                    )
                    .where(secrets.c.key_id != primary)
                    .limit(batch)
                ).all()
                conn.commit()
                return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

            rows = await self.repo.call(pending)
            if not rows:
                return changed
            updates = []
            for namespace, name, key_id, blob in rows:
                fresh = self.ring.reseal(namespace, name, Sealed(key_id, blob))
                updates.append((namespace, name, blob, fresh))

            def swap(
                conn: Connection, updates: list[tuple[str, str, bytes, Sealed]] = updates
            ) -> int:
                count = 0
                for namespace, name, old, fresh in updates:
                    result = conn.execute(
                        update(secrets)
                        .where(
                            and_(
                                secrets.c.namespace == namespace,
                                secrets.c.name == name,
                                secrets.c.ciphertext == old,
                            )
                        )
                        .values(key_id=fresh.key_id, ciphertext=fresh.blob)
                    )
                    count += result.rowcount
                conn.commit()
                return count

            changed += await self.repo.call(swap)

    # -- audit -----------------------------------------------------------------------------------

    async def record_read(
        self, namespace: str, name: str, *, execution_id: str | None, task_id: str | None
    ) -> None:
        now = utcnow()

        def run(conn: Connection) -> None:
            conn.execute(
                insert(secret_reads).values(
                    execution_id=execution_id,
                    task_id=task_id,
                    namespace=namespace,
                    name=name,
                    timestamp=now,
                )
            )
            conn.commit()

        await self.repo.call(run)

    async def reads(self, execution_id: str | None = None) -> list[SecretRead]:
        query = select(
            secret_reads.c.execution_id,
            secret_reads.c.task_id,
            secret_reads.c.namespace,
            secret_reads.c.name,
            secret_reads.c.timestamp,
        ).order_by(secret_reads.c.seq)
        if execution_id is not None:
            query = query.where(secret_reads.c.execution_id == execution_id)

        def run(conn: Connection) -> list[SecretRead]:
            rows = conn.execute(query).all()
            conn.commit()
            return [SecretRead(*row) for row in rows]

        return await self.repo.call(run)
