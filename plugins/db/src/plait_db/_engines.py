"""One pooled ``AsyncEngine`` per distinct URL + credentials, shared by every task of a process.

Engines (and their connections) belong to the event loop that created them, so the cache is kept
per loop. ``plait_shutdown`` disposes them; tests dispose them after each test.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from plait_db._urls import Target

log = logging.getLogger(__name__)

#: Pool settings: connections are checked before use (a restarted server is not an error) and
#: recycled after half an hour (before typical server or proxy idle timeouts).
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_RECYCLE = 1800


def _create(target: Target, *, pooled: bool) -> AsyncEngine:
    options: dict[str, object] = {"connect_args": dict(target.connect_args)}
    if not pooled:
        options["poolclass"] = NullPool
    elif not target.is_memory:
        options.update(
            pool_pre_ping=True,
            pool_recycle=POOL_RECYCLE,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )
    return create_async_engine(target.url, **options)


class EngineCache:
    """The process's engines, by event loop and target."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, AsyncEngine]
        ] = weakref.WeakKeyDictionary()

    def get(self, target: Target) -> AsyncEngine:
        """The shared engine of ``target`` on the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        engines = self._by_loop.get(loop)
        if engines is None:
            engines = self._by_loop[loop] = {}
        engine = engines.get(target.key)
        if engine is None:
            engine = engines[target.key] = _create(target, pooled=True)
        return engine

    def __len__(self) -> int:
        return sum(len(engines) for engines in self._by_loop.values())

    async def dispose_all(self) -> None:
        """Close every pooled connection of the running loop's engines and forget them all."""
        loop = asyncio.get_running_loop()
        mine = self._by_loop.pop(loop, {})
        others = sum(len(e) for lp, e in self._by_loop.items() if lp is not loop)
        if others:
            log.debug("forgetting %d engine(s) of other event loops", others)
        self._by_loop.clear()
        for engine in mine.values():
            try:
                await engine.dispose()
            except Exception:  # a dead connection must not stop the others from closing
                log.warning("could not dispose of %s", engine.url, exc_info=True)

    @asynccontextmanager
    async def private(self, target: Target) -> AsyncIterator[AsyncEngine]:
        """An unshared engine (in-memory or per-run SQLite files), disposed on exit."""
        engine = _create(target, pooled=target.is_memory)
        try:
            yield engine
        finally:
            await engine.dispose()


#: The engines of this process.
ENGINES = EngineCache()
