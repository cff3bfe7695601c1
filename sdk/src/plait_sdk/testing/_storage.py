"""Internal storage for tests: the core's URI scheme and access rules, over memory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

from plait_sdk._context import Storage
from plait_sdk._errors import UserError

SCHEME = "plait://"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._@+=,~-]+$")


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    """The storage key prefix of an execution, as the core lays it out."""
    return "/".join([*namespace.split("."), flow_id, "executions", execution_id])


def check_key(key: str) -> str:
    """``key`` when the core would accept it, else a :class:`UserError` saying why.

    The same rules as the core's storage, so a name a real run refuses is refused in tests.
    """
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key:
        raise UserError(f"invalid storage key {key!r}")
    decoded = urllib.parse.unquote(key)
    if decoded != key and (".." in decoded or "\\" in decoded or "\x00" in decoded):
        raise UserError(f"invalid storage key {key!r}: encoded path traversal")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise UserError(f"invalid storage key {key!r}: absolute paths are not allowed")
    for part in key.split("/"):
        if part in ("", ".", "..") or not _SAFE_SEGMENT.match(part):
            raise UserError(f"invalid storage key {key!r}: bad path segment {part!r}")
    return key


def key_of(uri: str) -> str:
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise UserError(f"not an internal storage URI: {str(uri)[:200]!r} (expected plait:///...)")
    return check_key(uri[len(SCHEME) :].lstrip("/"))


class FileStore:
    """Every file of one harness, by storage key, as files under ``root`` (streamed in chunks
    as the core's storage does, so a test of a large transfer holds no whole file in memory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def uri(self, key: str) -> str:
        return f"{SCHEME}/{key}"

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def keys(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def write(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


class HarnessStorage(Storage):
    """``ctx.storage`` of one task run: writes under its own prefix, reads only its execution's
    files (anything else is refused, as in a real run). Files live under the harness's root
    directory, shared by its task runs.

    Example::

        ctx = harness.context()
        uri = await ctx.storage.put("out.csv", b"a,b\n")
        assert uri in ctx.storage.written and harness.read(uri) == b"a,b\n"
    """

    def __init__(self, store: FileStore, write_prefix: str, read_prefixes: Sequence[str]) -> None:
        self._store = store
        self.write_prefix = check_key(write_prefix)
        self.read_prefixes = [check_key(p) for p in read_prefixes]
        #: URIs this task run stored, in order.
        self.written: list[str] = []

    def file(self, uri: str) -> bytes:
        """The content of a readable file, read now (for assertions, not for tasks)."""
        return self._store.read(self._readable(uri))

    def _readable(self, uri: str) -> str:
        key = key_of(uri)
        if not any(key.startswith(p + "/") for p in self.read_prefixes):
            raise UserError(f"{uri} is outside this execution's storage; access refused")
        if not self._store.exists(key):
            raise UserError(f"{uri} does not exist")
        return key

    async def put(self, name: str, data: bytes | AsyncIterable[bytes] | Path) -> str:
        key = f"{self.write_prefix}/{check_key(name)}"
        path = self._store.path(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # Written aside and renamed, as the core does: a failed transfer leaves no file.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            if isinstance(data, Path):
                await asyncio.to_thread(shutil.copyfile, data, tmp)
            elif isinstance(data, bytes | bytearray):
                await asyncio.to_thread(tmp.write_bytes, bytes(data))
            else:
                handle = await asyncio.to_thread(open, tmp, "wb")
                try:
                    async for chunk in data:
                        await asyncio.to_thread(handle.write, chunk)
                finally:
                    await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise
        uri = self._store.uri(key)
        if uri not in self.written:
            self.written.append(uri)
        return uri

    async def open(self, uri: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self._store.path(self._readable(uri))
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def read_bytes(self, uri: str) -> bytes:
        return await asyncio.to_thread(self._store.read, self._readable(uri))

    async def download(self, uri: str, path: Path) -> Path:
        source = self._store.path(self._readable(uri))
        await asyncio.to_thread(shutil.copyfile, source, path)
        return path

    async def size(self, uri: str) -> int:
        path = self._store.path(self._readable(uri))
        return (await asyncio.to_thread(path.stat)).st_size

    async def delete(self, uri: str) -> bool:
        key = key_of(uri)
        if not key.startswith(self.read_prefixes[0] + "/"):
            raise UserError(f"{uri} is not a file of this execution; deletion refused")
        path = self._store.path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
