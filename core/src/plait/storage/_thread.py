"""The database thread: runs blocking calls one after another, hands results to the loop.

``loop.run_in_executor`` with a one-thread pool does the same job with more machinery: a
``concurrent.futures.Future`` with its condition lock, chained to an asyncio future through
done-callbacks. Every state change of every execution makes this hop, and measured on a
sequential flow of non-pure tasks the hop was a third of the engine's cost per task; this
thread cuts it to a queue put, the thread's wake-up and one ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class DatabaseThread:
    """One named thread that owns a database connection and runs calls in submission order.

    Example::

        thread = DatabaseThread("plait-db")
        answer = await thread.run(lambda: 42)
        await thread.stop()
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the thread; a cancelled caller does not stop a call already queued
        (its transaction completes or rolls back as a whole)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, future))
        return await future

    async def stop(self) -> None:
        """Finish the queued calls, then end the thread."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, loop, future = item
            try:
                result = fn()
            except BaseException as error:  # handed to the caller, as an executor would
                _deliver(loop, future, None, error)
            else:
                _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)
