"""Helper task types for the S3 tests, registered through the real plugin hooks.

``s3test.MakeFile`` streams deterministic pseudo-random bytes into internal storage (a file
produced by a previous task); ``s3test.Digest`` streams a file back and returns its SHA-256.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from typing import ClassVar

from plait_sdk import Output, RegisterTask, RunContext, Task, hookimpl

CHUNK = 1 << 20


async def pseudo_random(size: int, seed: int) -> AsyncIterator[bytes]:
    """``size`` reproducible bytes, a chunk at a time (never the whole file in memory)."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        chunk = rng.randbytes(min(CHUNK, left))
        left -= len(chunk)
        yield chunk


def expected_digest(size: int, seed: int) -> str:
    rng = random.Random(seed)
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = rng.randbytes(min(CHUNK, left))
        left -= len(chunk)
        digest.update(chunk)
    return digest.hexdigest()


class FileOutput(Output):
    uri: str
    sha256: str
    size: int


class MakeFile(Task):
    """Write ``size`` pseudo-random bytes to internal storage as ``name``."""

    type_name: ClassVar[str] = "s3test.MakeFile"
    name: str = "blob.bin"
    size: int
    seed: int = 1

    async def run(self, ctx: RunContext) -> FileOutput:
        uri = await ctx.storage.put(self.name, pseudo_random(self.size, self.seed))
        return FileOutput(uri=uri, sha256=expected_digest(self.size, self.seed), size=self.size)


class Digest(Task):
    """SHA-256 and size of a file of internal storage, streamed."""

    type_name: ClassVar[str] = "s3test.Digest"
    uri: str

    async def run(self, ctx: RunContext) -> FileOutput:
        digest = hashlib.sha256()
        size = 0
        async for chunk in ctx.storage.open(self.uri):
            digest.update(chunk)
            size += len(chunk)
        return FileOutput(uri=self.uri, sha256=digest.hexdigest(), size=size)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    register(MakeFile)
    register(Digest)
