"""A clock that moves only when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """The time seen by ``ctx.now()``, key-value expiry and trigger scheduling in the harness.

    Starts at ``start`` (2026-01-01T00:00:00Z by default) and moves only with :meth:`advance`
    or :meth:`set`, so a test about "an hour later" takes no time.

    Example::

        >>> clock = FakeClock()
        >>> clock.advance(timedelta(minutes=5))
        datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.timezone.utc)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start or datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        """The current fake time (UTC, timezone-aware)."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never backwards) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a clock does not go back: {delta}")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (not earlier than now) and return it."""
        return self.advance(_aware(when) - self._now)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
