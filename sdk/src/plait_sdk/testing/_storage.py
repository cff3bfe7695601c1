"""Internal storage for tests: the core's URI scheme and access rules, over memory."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
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
    """Every file of one harness, by storage key: what all its task runs stored."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def uri(self, key: str) -> str:
        return f"{SCHEME}/{key}"


class HarnessStorage(Storage):
    """``ctx.storage`` of one task run: writes under its own prefix, reads only its execution's
    files (anything else is refused, as in a real run). Kept in memory, shared by the task runs
    of one harness.

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

    def _readable(self, uri: str) -> str:
        key = key_of(uri)
        if not any(key.startswith(p + "/") for p in self.read_prefixes):
            raise UserError(f"{uri} is outside this execution's storage; access refused")
        if key not in self._store.files:
            raise UserError(f"{uri} does not exist")
        return key

    async def put(self, name: str, data: bytes | AsyncIterable[bytes] | Path) -> str:
        key = f"{self.write_prefix}/{check_key(name)}"
        if isinstance(data, Path):
            content = await asyncio.to_thread(data.read_bytes)
        elif isinstance(data, bytes | bytearray):
            content = bytes(data)
        else:
            content = b"".join([chunk async for chunk in data])
        self._store.files[key] = content
        uri = self._store.uri(key)
        if uri not in self.written:
            self.written.append(uri)
        return uri

    async def open(self, uri: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        data = self._store.files[self._readable(uri)]
        for i in range(0, len(data), chunk_size):
            yield data[i : i + chunk_size]

    async def read_bytes(self, uri: str) -> bytes:
        return self._store.files[self._readable(uri)]

    async def download(self, uri: str, path: Path) -> Path:
        await asyncio.to_thread(path.write_bytes, await self.read_bytes(uri))
        return path

    async def size(self, uri: str) -> int:
        return len(await self.read_bytes(uri))

    async def delete(self, uri: str) -> bool:
        key = key_of(uri)
        if not key.startswith(self.read_prefixes[0] + "/"):
            raise UserError(f"{uri} is not a file of this execution; deletion refused")
        return self._store.files.pop(key, None) is not None
