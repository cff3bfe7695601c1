"""Internal storage: files passed between tasks, addressed by ``plait://`` URIs.

``LocalStorageBackend`` keeps objects under a root directory (atomic writes, streamed in chunks,
file I/O in threads). ``ExecutionStorage`` is what a task sees as ``ctx.storage``: it writes under
its own task run's prefix and reads only under the prefixes it was given (its execution's, and a
parent execution's for subflows); anything else, or anything that tries to climb out of a
prefix, is refused.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import urllib.parse
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path

from plait_sdk import Storage, StorageBackend, UserError

from plait.files import make_private_dirs, open_private

SCHEME = "plait://"
CHUNK = 1 << 20
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._@+=,~-]+$")


class StorageError(UserError):
    """A storage URI or key was refused or could not be read."""


def check_key(key: str) -> str:
    """A normalised relative key, or :class:`StorageError` for anything that could escape."""
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key:
        raise StorageError(f"invalid storage key {key!r}")
    decoded = urllib.parse.unquote(key)
    if decoded != key and (".." in decoded or "\\" in decoded or "\x00" in decoded):
        raise StorageError(f"invalid storage key {key!r}: encoded path traversal")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise StorageError(f"invalid storage key {key!r}: absolute paths are not allowed")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _SAFE_SEGMENT.match(part):
            raise StorageError(f"invalid storage key {key!r}: bad path segment {part!r}")
    return "/".join(parts)


class LocalStorageBackend(StorageBackend):
    """Objects as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"storage key {key!r} escapes the storage root")
        return path

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        path = self._path(key)
        # Owner-only (0700 directories, 0600 files): they hold the data of executions.
        await asyncio.to_thread(make_private_dirs, path.parent)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = await asyncio.to_thread(open_private, tmp)
        handle = await asyncio.to_thread(os.fdopen, fd, "wb")
        size = 0
        try:
            async for chunk in data:
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
        except BaseException:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, tmp, path)
        return size

    async def get(self, key: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            raise FileNotFoundError(key) from None

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def keys(self, prefix: str) -> list[str]:
        top = self._path(prefix)

        def walk() -> list[str]:
            if not top.is_dir():
                return []
            found = []
            for path in top.rglob("*"):
                # Files only; a ".name.<hex>.tmp" is a write in progress, not a file yet.
                if path.is_file() and not (path.name.startswith(".") and path.suffix == ".tmp"):
                    found.append(path.relative_to(self.root).as_posix())
            return sorted(found)

        return await asyncio.to_thread(walk)


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    return "/".join([*namespace.split("."), flow_id, "executions", execution_id])


def key_of(uri: str) -> str:
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise StorageError(
            f"not an internal storage URI: {str(uri)[:200]!r} (expected plait:///...)"
        )
    rest = uri[len(SCHEME) :]
    if not rest.startswith("/"):
        raise StorageError(f"not an internal storage URI: {uri!r} (expected plait:///...)")
    key = rest.lstrip("/")
    checked = check_key(key)
    if posixpath.normpath(checked) != checked:
        raise StorageError(f"invalid storage URI {uri!r}")
    return checked


class ExecutionStorage(Storage):
    """``ctx.storage`` of one task run."""

    def __init__(
        self, backend: StorageBackend, write_prefix: str, read_prefixes: Sequence[str]
    ) -> None:
        self.backend = backend
        self.write_prefix = check_key(write_prefix)
        self.read_prefixes = [check_key(p) for p in read_prefixes]

    def _readable(self, uri: str) -> str:
        key = key_of(uri)
        if not any(key.startswith(p + "/") for p in self.read_prefixes):
            raise StorageError(f"{uri} is outside this execution's storage; access refused")
        return key

    async def put(self, name: str, data: bytes | AsyncIterable[bytes] | Path) -> str:
        key = f"{self.write_prefix}/{check_key(name)}"
        await self.backend.put(key, _stream(data))
        return SCHEME + "/" + key

    async def open(self, uri: str, *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        key = self._readable(uri)
        try:
            async for chunk in self.backend.get(key, chunk_size=chunk_size):
                yield chunk
        except FileNotFoundError:
            raise StorageError(f"{uri} does not exist") from None

    async def read_bytes(self, uri: str) -> bytes:
        return b"".join([chunk async for chunk in self.open(uri)])

    async def download(self, uri: str, path: Path) -> Path:
        handle = await asyncio.to_thread(open, path, "wb")
        try:
            async for chunk in self.open(uri):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return path

    async def size(self, uri: str) -> int:
        key = self._readable(uri)
        try:
            return await self.backend.size(key)
        except FileNotFoundError:
            raise StorageError(f"{uri} does not exist") from None

    async def delete(self, uri: str) -> bool:
        # Only this execution's own files: a subflow reads its parent's, it does not delete them.
        key = key_of(uri)
        if not key.startswith(self.read_prefixes[0] + "/"):
            raise StorageError(f"{uri} is not a file of this execution; deletion refused")
        return await self.backend.delete(key)

    async def delete_execution_files(self) -> list[str]:
        own = self.read_prefixes[0]  # this execution's prefix (a subflow's parent's come after)
        deleted = []
        for key in await self.backend.keys(own):
            if await self.backend.delete(key):
                deleted.append(SCHEME + "/" + key)
        return deleted


async def _stream(data: bytes | AsyncIterable[bytes] | Path) -> AsyncIterator[bytes]:
    if isinstance(data, bytes | bytearray):
        for i in range(0, len(data), CHUNK):
            yield bytes(data[i : i + CHUNK])
        if not data:
            return
    elif isinstance(data, Path):
        handle = await asyncio.to_thread(open, data, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)
    else:
        async for chunk in data:
            yield chunk
