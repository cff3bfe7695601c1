"""``ctx.namespace_files`` in the harness: versioned files by (namespace, path), in memory."""

from __future__ import annotations

import builtins
from collections.abc import Mapping

from plait_sdk._context import NamespaceFiles
from plait_sdk._errors import UserError


def _clean(path: str) -> str:
    clean = path.removeprefix("/")
    parts = clean.split("/")
    if not clean or any(p in ("", ".", "..") for p in parts) or "\\" in clean:
        raise UserError(f"invalid namespace file path {path!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise UserError(f"invalid namespace file path {path!r}: control characters")
    return clean


class MemoryNamespaceFiles(NamespaceFiles):
    """``ctx.namespace_files`` in the harness: every version kept, the latest read.

    Seed it with :meth:`seed` (or the harness's ``namespace_files=`` argument) and inspect it
    with :meth:`snapshot`.

    Example::

        files = MemoryNamespaceFiles("company.team")
        files.seed({"scripts/etl.py": "print(1)"})
        assert await files.read("/scripts/etl.py") == b"print(1)"
        await files.write("out.csv", b"a,b")
        assert files.snapshot() == {
            "company.team": {"out.csv": b"a,b", "scripts/etl.py": b"print(1)"}
        }
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._files: dict[str, dict[str, builtins.list[bytes]]] = {}

    def seed(self, files: Mapping[str, bytes | str], *, namespace: str | None = None) -> None:
        """Store each file (text as UTF-8) as a first version, in ``namespace`` or the flow's."""
        for path, data in files.items():
            content = data.encode() if isinstance(data, str) else bytes(data)
            self._files.setdefault(namespace or self.namespace, {})[_clean(path)] = [content]

    def snapshot(self) -> dict[str, dict[str, bytes]]:
        """The latest content of every file, by namespace then path."""
        return {
            ns: {path: versions[-1] for path, versions in sorted(files.items())}
            for ns, files in self._files.items()
        }

    async def list(self, prefix: str = "", *, namespace: str | None = None) -> builtins.list[str]:
        folder = prefix.strip("/")
        files = self._files.get(namespace or self.namespace, {})
        return sorted(p for p in files if not folder or p == folder or p.startswith(folder + "/"))

    async def read(self, path: str, *, namespace: str | None = None) -> bytes:
        ns = namespace or self.namespace
        versions = self._files.get(ns, {}).get(_clean(path))
        if not versions:
            raise UserError(f"namespace file {path!r} does not exist in namespace {ns}")
        return versions[-1]

    async def write(self, path: str, data: bytes, *, namespace: str | None = None) -> int:
        versions = self._files.setdefault(namespace or self.namespace, {}).setdefault(
            _clean(path), []
        )
        versions.append(bytes(data))
        return len(versions)

    async def delete(self, path: str, *, namespace: str | None = None) -> bool:
        files = self._files.get(namespace or self.namespace, {})
        clean = _clean(path)
        gone = [p for p in files if p == clean or p.startswith(clean + "/")]
        for p in gone:
            del files[p]
        return bool(gone)
