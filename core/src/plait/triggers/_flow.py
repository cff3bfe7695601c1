"""``plait.core.Flow``: start a flow when executions of other flows end.

The server (``plait.server._flow_triggers``) finds the ended executions and starts the
downstream ones; this module declares the properties and matches one ended execution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from plait_sdk import Example, Model, Trigger
from pydantic import Field, field_validator, model_validator

#: The states a flow trigger reacts to by default: every end (Kestra also listens to PAUSED).
ENDED = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED")


def _ended_states(value: list[str]) -> list[str]:
    wrong = [s for s in value if s not in ENDED]
    if wrong:
        raise ValueError(
            f"states {wrong}: a flow trigger reacts to executions that ended ({', '.join(ENDED)})"
        )
    return value


class UpstreamFlow(Model):
    """One entry of ``preconditions.flows``: executions of this flow (or namespace)."""

    namespace: str | None = None
    flow_id: str | None = None
    states: list[str] = Field(default_factory=list)
    """The states that count (default: any end)."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Labels the execution must have."""

    @field_validator("states")
    @classmethod
    def _check_states(cls, value: list[str]) -> list[str]:
        return _ended_states(value)

    def matches(self, execution: Mapping[str, Any]) -> bool:
        if self.namespace is not None and execution.get("namespace") != self.namespace:
            return False
        if self.flow_id is not None and execution.get("flowId") != self.flow_id:
            return False
        if self.states and execution.get("state") not in self.states:
            return False
        have = execution.get("labels") or {}
        return all(k in have and str(have[k]) == str(v) for k, v in self.labels.items())


class FilterField(StrEnum):
    FLOW_ID = "FLOW_ID"
    NAMESPACE = "NAMESPACE"
    STATE = "STATE"
    EXPRESSION = "EXPRESSION"


class FilterType(StrEnum):
    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL_TO = "NOT_EQUAL_TO"
    IS_NULL = "IS_NULL"
    IS_NOT_NULL = "IS_NOT_NULL"
    IS_TRUE = "IS_TRUE"
    IS_FALSE = "IS_FALSE"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    REGEX = "REGEX"
    CONTAINS = "CONTAINS"
    IN = "IN"
    NOT_IN = "NOT_IN"


NO_VALUE = frozenset(
    {FilterType.IS_NULL, FilterType.IS_NOT_NULL, FilterType.IS_TRUE, FilterType.IS_FALSE}
)


class Filter(Model):
    """One filter of a ``where`` entry: ``field`` compared by ``type`` with ``value(s)``."""

    field: FilterField
    type: FilterType
    value: str | None = None
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_value(self) -> Filter:
        if self.type in (FilterType.IN, FilterType.NOT_IN):
            if not self.values:
                raise ValueError(f"filter type {self.type.value} needs `values`")
        elif self.type not in NO_VALUE and self.value is None:
            raise ValueError(f"filter type {self.type.value} needs a `value`")
        if self.type is FilterType.REGEX and self.value is not None:
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(f"filter regex {self.value!r}: {error}") from None
        return self

    def test(self, actual: Any) -> bool:
        text = None if actual is None else str(actual)
        match self.type:
            case FilterType.IS_NULL:
                return actual is None
            case FilterType.IS_NOT_NULL:
                return actual is not None
            case FilterType.IS_TRUE:
                return _truthy(actual)
            case FilterType.IS_FALSE:
                return not _truthy(actual)
            case FilterType.IN:
                return text in self.values
            case FilterType.NOT_IN:
                return text not in self.values
        if text is None:
            return self.type is FilterType.NOT_EQUAL_TO
        value = self.value or ""
        match self.type:
            case FilterType.EQUAL_TO:
                return text == value
            case FilterType.NOT_EQUAL_TO:
                return text != value
            case FilterType.STARTS_WITH:
                return text.startswith(value)
            case FilterType.ENDS_WITH:
                return text.endswith(value)
            case FilterType.CONTAINS:
                return value in text
            case _:  # REGEX: the whole value matches, as Java's String.matches
                return re.fullmatch(value, text) is not None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


class Operand(StrEnum):
    AND = "AND"
    OR = "OR"


class Where(Model):
    """A ``where`` entry: its filters combined with ``operand`` (AND by default)."""

    id: str | None = None
    operand: Operand = Operand.AND
    filters: list[Filter] = Field(min_length=1)


class WindowType(StrEnum):
    DURATION_WINDOW = "DURATION_WINDOW"
    SLIDING_WINDOW = "SLIDING_WINDOW"
    DAILY_TIME_WINDOW = "DAILY_TIME_WINDOW"
    DAILY_TIME_DEADLINE = "DAILY_TIME_DEADLINE"


class TimeWindow(Model):
    """With several ``flows``: the window their executions must all have ended in (Kestra's
    ``timeWindow``). Times of day without an offset are UTC.

    - ``SLIDING_WINDOW`` (Plait's default): the ``window`` before the last one ended;
    - ``DURATION_WINDOW`` (Kestra's default): fixed windows of ``window`` one after the other
      (from midnight UTC, shifted by ``windowAdvance``): ``P1D`` is each day from midnight;
    - ``DAILY_TIME_WINDOW``: each day between ``startTime`` and ``endTime``; an execution that
      ends outside starts nothing;
    - ``DAILY_TIME_DEADLINE``: each day from midnight until ``deadline``; after it, nothing.
    """

    type: WindowType = WindowType.SLIDING_WINDOW
    window: timedelta = timedelta(hours=24)
    """The window's length (``SLIDING_WINDOW``, ``DURATION_WINDOW``)."""
    window_advance: timedelta | None = None
    """``DURATION_WINDOW``: where the windows start (``PT6H``: 6 AM for daily windows)."""
    deadline: time | None = None
    """``DAILY_TIME_DEADLINE``: the time of day (``"09:00:00"``) by which all must have ended."""
    start_time: time | None = None
    """``DAILY_TIME_WINDOW``: the window's start each day (``"06:00:00"``)."""
    end_time: time | None = None
    """``DAILY_TIME_WINDOW``: the window's end each day (``"18:00:00"``)."""

    @model_validator(mode="after")
    def _complete(self) -> TimeWindow:
        if self.window <= timedelta(0):
            raise ValueError("timeWindow.window must be a positive duration")
        if self.type is WindowType.DAILY_TIME_DEADLINE and self.deadline is None:
            raise ValueError("timeWindow type DAILY_TIME_DEADLINE needs `deadline` (HH:MM:SS)")
        if self.type is WindowType.DAILY_TIME_WINDOW:
            if self.start_time is None or self.end_time is None:
                raise ValueError(
                    "timeWindow type DAILY_TIME_WINDOW needs `startTime` and `endTime` (HH:MM:SS)"
                )
            if _seconds(self.start_time) >= _seconds(self.end_time):
                raise ValueError("timeWindow: `startTime` must be before `endTime`")
        return self

    def bounds(self, ended: datetime) -> tuple[datetime, datetime] | None:
        """The window an execution that ended at ``ended`` counts in: ``(start, ended)``, or
        ``None`` when it ended outside every window (the daily types)."""
        ended = ended.astimezone(UTC)
        if self.type is WindowType.SLIDING_WINDOW:
            return ended - self.window, ended
        if self.type is WindowType.DURATION_WINDOW:
            origin = datetime(1970, 1, 1, tzinfo=UTC) + (self.window_advance or timedelta(0))
            periods = (ended - origin) // self.window
            return origin + periods * self.window, ended
        midnight = ended.replace(hour=0, minute=0, second=0, microsecond=0)
        now = _seconds(ended.timetz())
        if self.type is WindowType.DAILY_TIME_DEADLINE:
            assert self.deadline is not None
            return (midnight, ended) if now <= _seconds(self.deadline) else None
        assert self.start_time is not None
        assert self.end_time is not None
        start, stop = _seconds(self.start_time), _seconds(self.end_time)
        if not start <= now <= stop:
            return None
        return midnight + timedelta(seconds=start), ended


def _seconds(value: time) -> float:
    """Seconds since midnight UTC of a time of day (UTC when it has no offset)."""
    shift = value.utcoffset() or timedelta(0)
    base = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    return (base - shift.total_seconds()) % 86400


class Preconditions(Model):
    """Kestra's ``preconditions``: which ended executions start the flow."""

    id: str | None = None
    flows: list[UpstreamFlow] = Field(default_factory=list)
    """Upstream flows. One: each of its executions that ends starts the flow. Several: the
    flow starts once each has ended within ``timeWindow`` (then they count again from zero)."""
    where: list[Where] = Field(default_factory=list)
    """Filters on the ended execution's FLOW_ID, NAMESPACE, STATE or an EXPRESSION."""
    time_window: TimeWindow = Field(default_factory=TimeWindow)
    reset_on_success: bool = True
    """``true``: once the flow started, every upstream flow must end again (within the window)
    before it starts again. ``false``: within the window, each further matching execution
    starts it again while the others' executions still count."""


class FlowTrigger(Trigger):
    """Start an execution when an execution of another flow ends.

    `preconditions` (Kestra's newer form: `flows` with namespace, flowId, states; `where`
    filters) and `conditions` (ExecutionStatus, ExecutionNamespace, ExecutionFlow,
    ExecutionLabels, ExecutionOutputs, Expression, ...) choose which ended executions count;
    with neither, every execution of every flow counts. The flow sees `trigger.executionId`,
    `trigger.namespace`, `trigger.flowId`, `trigger.flowRevision`, `trigger.state`,
    `trigger.outputs` and `trigger.executionLabels`; `inputs` may use them.
    """

    type_name: ClassVar[str] = "plait.core.Flow"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.core.models.triggers.types.Flow",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Transform once the extract flow succeeded, with its `date` output",
            code=(
                "triggers:\n"
                "  - id: after_extract\n"
                "    type: plait.core.Flow\n"
                "    inputs:\n"
                '      date: "{{ trigger.outputs.date }}"\n'
                "    preconditions:\n"
                "      id: extract_done\n"
                "      flows:\n"
                "        - namespace: company.team\n"
                "          flowId: extract\n"
                "          states: [SUCCESS]\n"
            ),
        ),
    )

    states: list[str] = Field(default_factory=lambda: list(ENDED))
    """The states of the ended execution that count (default: every end state)."""
    preconditions: Preconditions | None = None
    """Which upstream executions count (Kestra's `preconditions`)."""

    @field_validator("states")
    @classmethod
    def _check_states(cls, value: list[str]) -> list[str]:
        return _ended_states(value)
