"""Password guessing: failed logins throttled per user name and per client address, and a
bounded number of Argon2 verifications at once.

After ``max_failures`` failed attempts (within ``window`` seconds) for one user name, or from one
client address, that name or address is locked out for ``lockout`` seconds, doubled with every
further failure up to ``lockout_max``: a 429 with ``Retry-After``, answered before any password
is checked (a locked-out guess costs no CPU). A success clears the user name's failures, not the
address's (one account of one's own must not reset the count of guesses at others).

Argon2 is memory- and CPU-hard on purpose, so each verification runs in a thread (never on the
event loop) and at most ``concurrency`` run at once; at most ``queue`` more wait, and a request
beyond that is a 429 too (a flood of logins cannot take every core or pile up memory).

The counts live in this process's memory (bounded: the oldest entries are dropped past
``MAX_TRACKED``); several server processes each count their own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from plait.server._errors import ApiError

T = TypeVar("T")

#: Names and addresses remembered at most (each entry is a few dozen bytes).
MAX_TRACKED = 10_000


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int,
        lockout: float,
        lockout_max: float,
        window: float,
        concurrency: int,
        queue: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lockout = lockout
        self.lockout_max = lockout_max
        self.window = window
        self.queue = queue
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, name: str, address: str) -> None:
        """Refuse (429) while the user name or the address is locked out."""
        now = self._clock()
        wait = max(self._locked(f"user:{name.casefold()}", now), self._locked(f"ip:{address}", now))
        if wait > 0:
            raise ApiError(
                429,
                f"too many failed logins for this user or from this address: try again in "
                f"{math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        for key in (f"user:{name.casefold()}", f"ip:{address}"):
            entry = self._seen.pop(key, None) or _Failures()
            if now - entry.last > self.window and now >= entry.locked_until:
                entry = _Failures()  # the earlier failures are forgotten
            entry.count += 1
            entry.last = now
            beyond = entry.count - self.max_failures
            if beyond >= 0:
                entry.locked_until = now + min(self.lockout_max, self.lockout * 2**beyond)
            self._seen[key] = entry  # most recent last
            while len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)

    def succeeded(self, name: str) -> None:
        self._seen.pop(f"user:{name.casefold()}", None)

    async def attempt(
        self, name: str, address: str, check: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        """A password check (``check``: ``None`` for a wrong password) of user ``name`` from
        ``address``: refused while either is locked out, counted when it fails."""
        self.check(name, address)
        found = await self.verify(check)
        if found is None:
            self.failed(name, address)
        else:
            self.succeeded(name)
        return found

    async def verify(self, check: Callable[[], Awaitable[T]]) -> T:
        """Run ``check`` (an Argon2 verification) once one of the slots is free."""
        if self._slots.locked() and self._waiting >= self.queue:
            raise ApiError(429, "too many logins at once: try again", headers={"Retry-After": "1"})
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await check()
        finally:
            self._slots.release()

    def _locked(self, key: str, now: float) -> float:
        entry = self._seen.get(key)
        return 0.0 if entry is None else max(0.0, entry.locked_until - now)
