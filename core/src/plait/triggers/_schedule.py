"""``plait.core.Schedule``: start a flow on a cron schedule (croniter parses and iterates it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter
from plait_sdk import Example, Trigger
from pydantic import Field, field_validator

from plait.triggers._backfill import Backfill

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class RecoverMissed(StrEnum):
    """What to do with the ticks that passed while the server was down."""

    ALL = "ALL"
    LAST = "LAST"
    NONE = "NONE"


class Schedule(Trigger):
    """Start an execution at each tick of a cron expression, in a time zone.

    Five fields (minute precision) or six (`withSeconds: true`, or six fields written: the
    first is the second), or a nickname (`@hourly`, `@daily`, ...). The flow sees
    `trigger.date` (this tick), `trigger.next` and `trigger.previous`.
    """

    type_name: ClassVar[str] = "plait.core.Schedule"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.trigger.Schedule",
        "io.kestra.core.models.triggers.types.Schedule",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Every night at 02:30 Paris time",
            code=(
                "triggers:\n"
                "  - id: nightly\n"
                "    type: plait.core.Schedule\n"
                '    cron: "30 2 * * *"\n'
                "    timezone: Europe/Paris\n"
            ),
        ),
    )

    cron: str = Field(min_length=1)
    """A cron expression (5 fields, 6 with seconds first) or a nickname such as `@daily`."""
    with_seconds: bool = False
    """Read a six-field expression's first field as seconds (implied by six fields)."""
    timezone: str = "UTC"
    """An IANA time zone (`Europe/Paris`); DST gaps and repeats are handled as cron does."""
    recover_missed_schedules: RecoverMissed = RecoverMissed.ALL
    """After downtime: start every missed tick (`ALL`), only the latest (`LAST`), or none."""
    backfill: Backfill | None = None
    """Run the ticks from `start` to `end` (default: now) once, at most `concurrency` at a
    time (Kestra's `backfill`); also started, paused and cancelled through the API."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        expression = NICKNAMES.get(value.strip().lower(), value.strip())
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"cron {value!r}: 5 or 6 fields (or a nickname such as @daily)")
        try:
            croniter(expression, second_at_beginning=len(fields) == 6)
        except (CroniterBadCronError, ValueError, KeyError) as error:
            raise ValueError(f"cron {value!r}: {error}") from None
        return value

    @property
    def expression(self) -> str:
        return NICKNAMES.get(self.cron.strip().lower(), self.cron.strip())

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (aware, in UTC).

        On the day clocks go back, a fixed-hour tick in the repeated hour fires once (the
        first time), as cron does; every-hour expressions fire in both.
        """
        return _next_after(self.expression, self.timezone, moment)

    def previous_before(self, moment: datetime) -> datetime:
        """The last tick strictly before ``moment`` (aware, in UTC)."""
        return _previous_before(self.expression, self.timezone, moment)


# croniter costs ~0.5 ms a call; many schedules share an expression and tick together (10,000
# one-minute schedules ask the same question at every tick), so the answers are memoised.
_CACHE = 8192


def _iter(expression: str, timezone: str, start: datetime) -> croniter:
    six = len(expression.split()) == 6
    return croniter(expression, start.astimezone(ZoneInfo(timezone)), second_at_beginning=six)


@lru_cache(maxsize=_CACHE)
def _next_after(expression: str, timezone: str, moment: datetime) -> datetime:
    ticks = _iter(expression, timezone, moment)
    zone = ZoneInfo(timezone)
    fields = expression.split()
    fixed_hour = fields[2 if len(fields) == 6 else 1] != "*"
    while True:
        tick: datetime = ticks.get_next(datetime)
        local = tick.astimezone(zone)
        first = local.replace(fold=0)
        repeated = first.utcoffset() != local.replace(fold=1).utcoffset()
        if fixed_hour and repeated and local.fold == 1:
            continue
        return tick.astimezone(ZoneInfo("UTC"))


@lru_cache(maxsize=_CACHE)
def _previous_before(expression: str, timezone: str, moment: datetime) -> datetime:
    tick: datetime = _iter(expression, timezone, moment).get_prev(datetime)
    return tick.astimezone(ZoneInfo("UTC"))
