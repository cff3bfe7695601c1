"""The namespace files in the Plait database: every version of each file of a namespace."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime

from plait_sdk import NamespaceFiles, UserError
from sqlalchemy import Connection, and_, delete, func, insert, or_, select

from plait.limits import limits
from plait.nsfiles._paths import below, check_namespace, check_path
from plait.records import utcnow
from plait.storage import SqlRepository
from plait.storage import namespace_files as table


@dataclass(frozen=True)
class FileStat:
    """One namespace file (its latest version)."""

    path: str
    size: int
    version: int
    #: When the first version was stored, and when the latest was.
    created: datetime
    updated: datetime


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return escaped + "/%"


class NamespaceFileStore:
    """Namespace files by (namespace, path), versioned: a write adds a version, a read gets the
    latest, a delete removes every version."""

    def __init__(self, repo: SqlRepository) -> None:
        self.repo = repo

    async def put(self, namespace: str, path: str, data: bytes) -> int:
        """Store ``data`` as the next version of ``path``; returns the version number."""
        check_namespace(namespace)
        clean = check_path(path)
        limit = limits().namespace_file_max_bytes
        if len(data) > limit:
            raise UserError(
                f"namespace file {clean!r} is {len(data)} bytes; the limit is {limit} "
                "(PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES)"
            )
        now = utcnow()

        def run(conn: Connection) -> int:
            parents = _parents(clean)
            clash = conn.execute(
                select(table.c.path)
                .where(table.c.namespace == namespace)
                .where(
                    or_(
                        table.c.path.in_(parents),
                        table.c.path.like(_like_prefix(clean), escape="\\"),
                    )
                )
                .limit(1)
            ).first()
            if clash is not None:
                conn.rollback()
                raise UserError(
                    f"namespace file {clean!r} clashes with {clash[0]!r} "
                    "(a path cannot be both a file and a directory)"
                )
            where = and_(table.c.namespace == namespace, table.c.path == clean)
            last = conn.execute(select(func.max(table.c.version)).where(where)).scalar()
            version = int(last or 0) + 1
            conn.execute(
                insert(table).values(
                    namespace=namespace,
                    path=clean,
                    version=version,
                    size=len(data),
                    content=data,
                    created=now,
                )
            )
            conn.commit()
            return version

        return await self.repo.call(run)

    async def get(self, namespace: str, path: str, version: int | None = None) -> bytes | None:
        """The content of the latest version (or of ``version``), ``None`` when missing."""
        check_namespace(namespace)
        clean = check_path(path)
        where = and_(table.c.namespace == namespace, table.c.path == clean)
        query = select(table.c.content).where(where)
        if version is None:
            query = query.order_by(table.c.version.desc()).limit(1)
        else:
            query = query.where(table.c.version == version)

        def run(conn: Connection) -> bytes | None:
            row = conn.execute(query).first()
            conn.commit()
            return bytes(row[0]) if row is not None else None

        return await self.repo.call(run)

    async def list(self, namespace: str, prefix: str = "") -> list[FileStat]:
        """The files under the directory ``prefix`` (all when empty), sorted by path."""
        check_namespace(namespace)
        clean = check_path(prefix, directory=True)
        query = (
            select(table.c.path, table.c.version, table.c.size, table.c.created)
            .where(table.c.namespace == namespace)
            .order_by(table.c.path, table.c.version)
        )
        if clean:
            query = query.where(
                or_(table.c.path == clean, table.c.path.like(_like_prefix(clean), escape="\\"))
            )

        def run(conn: Connection) -> list[FileStat]:
            rows = conn.execute(query).all()
            conn.commit()
            found: dict[str, FileStat] = {}
            for path, version, size, stored in rows:
                # SQLite gives timestamps back without their zone: they are UTC.
                created = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
                first = found.get(path)
                found[path] = FileStat(
                    path=path,
                    size=int(size),
                    version=int(version),
                    created=first.created if first else created,
                    updated=created,
                )
            return list(found.values())

        return [f for f in await self.repo.call(run) if below(f.path, clean)]

    async def stat(self, namespace: str, path: str) -> FileStat | None:
        clean = check_path(path)
        return next((f for f in await self.list(namespace, clean) if f.path == clean), None)

    async def delete(self, namespace: str, path: str) -> builtins.list[str]:
        """Delete the file ``path``, or every file under the directory ``path``; the paths
        deleted."""
        check_namespace(namespace)
        clean = check_path(path, directory=True)
        gone = [f.path for f in await self.list(namespace, clean)]
        if not gone:
            return []
        where = and_(table.c.namespace == namespace, table.c.path.in_(gone))

        def run(conn: Connection) -> None:
            conn.execute(delete(table).where(where))
            conn.commit()

        await self.repo.call(run)
        return gone


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class ScopedNamespaceFiles(NamespaceFiles):
    """The store as a task sees it: the flow's namespace unless told otherwise."""

    def __init__(self, store: NamespaceFileStore, namespace: str) -> None:
        self._store = store
        self._namespace = namespace

    async def list(self, prefix: str = "", *, namespace: str | None = None) -> list[str]:
        return [f.path for f in await self._store.list(namespace or self._namespace, prefix)]

    async def read(self, path: str, *, namespace: str | None = None) -> bytes:
        ns = namespace or self._namespace
        data = await self._store.get(ns, path)
        if data is None:
            raise UserError(f"namespace file {path!r} does not exist in namespace {ns}")
        return data

    async def write(self, path: str, data: bytes, *, namespace: str | None = None) -> int:
        return await self._store.put(namespace or self._namespace, path, data)

    async def delete(self, path: str, *, namespace: str | None = None) -> bool:
        return bool(await self._store.delete(namespace or self._namespace, path))
