"""A schedule's backfill: every tick from ``start`` to ``end`` (default: when it was asked
for), fired as the schedule would have, at most ``concurrency`` executions running at once.

:class:`Backfill` is what is asked (in the flow, Kestra's ``backfill:`` of a Schedule, or
through the API); :class:`BackfillProgress` is what the trigger loop stores in the trigger's
row and moves, tick by tick, in the transaction that creates each tick's execution.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plait_sdk import Model, UserError
from pydantic import Field, field_validator

from plait.limits import limits

if TYPE_CHECKING:
    from plait.triggers._schedule import Schedule


#: ``start`` itself is a tick to fire when it is one: look from just before it.
_EPSILON = timedelta(microseconds=1)


class Backfill(Model):
    """Run the ticks a schedule missed (or would have had) between two dates.

    Example::

        backfill:
          start: 2026-01-01T00:00:00Z
          end: 2026-01-31T23:59:59Z
          concurrency: 2
    """

    start: datetime
    """The first moment to cover (ISO-8601; UTC when it has no offset)."""
    end: datetime | None = None
    """The last moment to cover; default: when the backfill is started."""
    concurrency: int = Field(default=1, ge=1, le=1000)
    """The most backfill executions of this trigger running at once."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """Inputs of the backfill's executions (over the trigger's own)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the backfill's executions."""
    paused: bool = False
    """Start it paused."""

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class BackfillProgress(Model):
    """A backfill as stored: what was asked, and how far it went."""

    start: datetime
    end: datetime
    concurrency: int = 1
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    paused: bool = False
    #: The next tick to fire (None once every tick fired).
    current_date: datetime | None = None
    done: int = 0
    total: int = 0
    #: Executions it started that had not ended at the last look.
    running: list[str] = Field(default_factory=list)
    cancelled: bool = False
    #: Asked in the flow's YAML (not through the API): the same one is not asked again.
    from_flow: bool = False

    @property
    def finished(self) -> bool:
        return self.cancelled or (self.current_date is None and not self.running)

    @property
    def active(self) -> bool:
        return not self.finished and not self.paused


def begin_backfill(
    asked: Backfill, schedule: Schedule, now: datetime, *, from_flow: bool = False
) -> BackfillProgress:
    """The progress of a new backfill: its ticks counted (bounded by ``backfill_max_ticks``)."""
    end = asked.end or now
    if end < asked.start:
        raise UserError(
            f"backfill: end {end.isoformat()} is before start {asked.start.isoformat()}"
        )
    most = limits().backfill_max_ticks
    total = 0
    try:
        first = schedule.next_after(asked.start - _EPSILON)
        tick = first
        while tick <= end:
            total += 1
            if total > most:
                raise UserError(
                    f"backfill: more than {most} ticks from {asked.start.isoformat()} to "
                    f"{end.isoformat()} (limit backfill_max_ticks, set with "
                    "PLAIT_LIMIT_BACKFILL_MAX_TICKS)"
                )
            tick = schedule.next_after(tick)
    except (OverflowError, ValueError) as error:  # dates at the ends of the calendar
        raise UserError(f"backfill: no tick can be computed from {asked.start}: {error}") from None
    return BackfillProgress(
        start=asked.start,
        end=end,
        concurrency=asked.concurrency,
        inputs=asked.inputs,
        labels=asked.labels,
        paused=asked.paused,
        current_date=first if total else None,
        total=total,
        from_flow=from_flow,
    )
