"""``conditions:`` on any trigger: Kestra's condition types, each a small model with ``test``.

A trigger starts an execution only when every one of its conditions holds. The loop and the
webhook endpoint build a :class:`ConditionContext` (the trigger's date, its variables, and for
a flow trigger the execution that ended) and call :func:`check`, which answers ``None`` when
all hold or the reason the first one does not (shown as the trigger's last evaluation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, ClassVar

from plait_sdk import Model
from pydantic import Field, ValidationError

#: Renders a template string against a context (the runtime's sandboxed engine).
Render = Callable[[Any, Mapping[str, Any]], Awaitable[Any]]


@dataclass
class ConditionContext:
    """What a condition may look at."""

    date: datetime
    """The trigger's date: a schedule's tick, the time a request or an execution's end was seen."""
    namespace: str
    flow_id: str
    render: Render
    variables: Mapping[str, Any] = field(default_factory=dict)
    """The trigger's variables (``trigger.*`` in templates)."""
    execution: Mapping[str, Any] | None = None
    """For a flow trigger: the execution that ended (namespace, flowId, state, labels, outputs)."""

    def template_context(self) -> dict[str, Any]:
        return {
            "trigger": dict(self.variables),
            "flow": {"namespace": self.namespace, "id": self.flow_id},
            **({"execution": dict(self.execution)} if self.execution is not None else {}),
        }


class Condition(Model):
    """Base of every condition type."""

    type_name: ClassVar[str] = ""
    kestra_names: ClassVar[tuple[str, ...]] = ()
    """Kestra's short names: ``io.kestra.plugin.core.condition.<name>`` and the older
    ``...Condition`` spellings are accepted as aliases."""

    type: str

    async def test(self, ctx: ConditionContext) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        return self.type_name.rsplit(".", 1)[-1]


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


DAYS = list(DayOfWeek)


class DateCondition(Condition):
    """Conditions on a date: ``date`` (a template) defaults to the trigger's date."""

    date: str | None = None
    """The date tested, a template (Kestra's default `{{ trigger.date }}`)."""

    async def moment(self, ctx: ConditionContext) -> datetime:
        if self.date is None:
            return ctx.date
        rendered = await ctx.render(self.date, ctx.template_context())
        if isinstance(rendered, datetime):
            return rendered
        if isinstance(rendered, date):
            return datetime.combine(rendered, time(0), ctx.date.tzinfo)
        try:
            parsed = datetime.fromisoformat(str(rendered).strip())
        except ValueError:
            raise ValueError(f"{self.describe()}: date {rendered!r} is not an ISO date") from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ctx.date.tzinfo)


class DayWeek(DateCondition):
    """True on one day of the week."""

    type_name: ClassVar[str] = "plait.core.condition.DayWeek"
    kestra_names: ClassVar[tuple[str, ...]] = ("DayWeek", "DayWeekCondition")
    day_of_week: DayOfWeek

    async def test(self, ctx: ConditionContext) -> bool:
        return DAYS[(await self.moment(ctx)).weekday()] is self.day_of_week


class DayInMonth(StrEnum):
    FIRST = "FIRST"
    SECOND = "SECOND"
    THIRD = "THIRD"
    FOURTH = "FOURTH"
    LAST = "LAST"


class DayWeekInMonth(DateCondition):
    """True on the first, second, third, fourth or last given weekday of the month."""

    type_name: ClassVar[str] = "plait.core.condition.DayWeekInMonth"
    kestra_names: ClassVar[tuple[str, ...]] = ("DayWeekInMonth", "DayWeekInMonthCondition")
    day_of_week: DayOfWeek
    day_in_month: DayInMonth

    async def test(self, ctx: ConditionContext) -> bool:
        moment = await self.moment(ctx)
        if DAYS[moment.weekday()] is not self.day_of_week:
            return False
        if self.day_in_month is DayInMonth.LAST:
            # The last one: a week later is in the next month.
            return (moment.day + 7) > _days_in_month(moment.year, moment.month)
        return (moment.day - 1) // 7 == list(DayInMonth).index(self.day_in_month)


def _days_in_month(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]


class Weekend(DateCondition):
    """True on Saturdays and Sundays."""

    type_name: ClassVar[str] = "plait.core.condition.Weekend"
    kestra_names: ClassVar[tuple[str, ...]] = ("Weekend", "WeekendCondition")

    async def test(self, ctx: ConditionContext) -> bool:
        return (await self.moment(ctx)).weekday() >= 5


def _parse_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time (HH:MM:SS, optionally with an offset)") from None


class TimeBetween(DateCondition):
    """True when the time of day of the date is within ``after`` .. ``before`` (both optional;
    with an offset such as `+02:00` the date is compared in that offset, else as it is)."""

    type_name: ClassVar[str] = "plait.core.condition.TimeBetween"
    kestra_names: ClassVar[tuple[str, ...]] = ("TimeBetween", "TimeBetweenCondition")
    after: str | None = None
    before: str | None = None

    async def test(self, ctx: ConditionContext) -> bool:
        moment = await self.moment(ctx)
        for bound, later in ((self.after, True), (self.before, False)):
            if bound is None:
                continue
            limit = _parse_time(bound)
            local = moment.astimezone(limit.tzinfo) if limit.tzinfo is not None else moment
            now = local.timetz().replace(tzinfo=None)
            plain = limit.replace(tzinfo=None)
            if (later and now < plain) or (not later and now > plain):
                return False
        return True


class DateTimeBetween(DateCondition):
    """True when the date is within ``after`` .. ``before`` (ISO date-times, both optional)."""

    type_name: ClassVar[str] = "plait.core.condition.DateTimeBetween"
    kestra_names: ClassVar[tuple[str, ...]] = ("DateTimeBetween", "DateTimeBetweenCondition")
    after: datetime | None = None
    before: datetime | None = None

    async def test(self, ctx: ConditionContext) -> bool:
        moment = await self.moment(ctx)
        if self.after is not None and moment < _aware(self.after, moment):
            return False
        return not (self.before is not None and moment > _aware(self.before, moment))


def _aware(value: datetime, like: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=like.tzinfo)


class PublicHoliday(DateCondition):
    """True on a public holiday of ``country`` (ISO code) and optional ``subDivision``, from the
    maintained `holidays` package."""

    type_name: ClassVar[str] = "plait.core.condition.PublicHoliday"
    kestra_names: ClassVar[tuple[str, ...]] = ("PublicHoliday", "PublicHolidayCondition")
    country: str = Field(min_length=2, max_length=3)
    sub_division: str | None = None

    async def test(self, ctx: ConditionContext) -> bool:
        import holidays

        moment = await self.moment(ctx)
        try:
            calendar = holidays.country_holidays(
                self.country.upper(), subdiv=self.sub_division, years=moment.year
            )
        except NotImplementedError:
            raise ValueError(f"PublicHoliday: unknown country {self.country!r}") from None
        return moment.date() in calendar


class ExecutionCondition(Condition):
    """Conditions on the execution that ended (flow triggers only; false elsewhere)."""

    async def test(self, ctx: ConditionContext) -> bool:
        return ctx.execution is not None and await self.on(ctx, ctx.execution)

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        raise NotImplementedError


class ExecutionStatus(ExecutionCondition):
    """True when the execution's state is in ``in`` and not in ``notIn``."""

    type_name: ClassVar[str] = "plait.core.condition.ExecutionStatus"
    kestra_names: ClassVar[tuple[str, ...]] = ("ExecutionStatus", "ExecutionStatusCondition")
    in_: list[str] = Field(default_factory=list, alias="in")
    not_in: list[str] = Field(default_factory=list)

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        state = execution.get("state")
        return (not self.in_ or state in self.in_) and state not in self.not_in


class HasRetryAttempt(ExecutionCondition):
    """True when a task run of the execution was retried (more than one attempt) and one of
    its attempts ended in a state in ``in`` and not in ``notIn`` (Kestra's condition)."""

    type_name: ClassVar[str] = "plait.core.condition.HasRetryAttempt"
    kestra_names: ClassVar[tuple[str, ...]] = ("HasRetryAttempt", "HasRetryAttemptCondition")
    in_: list[str] = Field(default_factory=list, alias="in")
    not_in: list[str] = Field(default_factory=list)

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        return any(
            (not self.in_ or state in self.in_) and state not in self.not_in
            for attempts in execution.get("retried", ())
            for state in attempts
        )


class Comparison(StrEnum):
    EQUALS = "EQUALS"
    PREFIX = "PREFIX"
    SUFFIX = "SUFFIX"


class ExecutionNamespace(ExecutionCondition):
    """True when the execution's namespace equals (or starts, or ends with) ``namespace``."""

    type_name: ClassVar[str] = "plait.core.condition.ExecutionNamespace"
    kestra_names: ClassVar[tuple[str, ...]] = (
        "ExecutionNamespace",
        "ExecutionNamespaceCondition",
    )
    namespace: str
    comparison: Comparison | None = None
    prefix: bool = False
    """Kestra's older spelling of `comparison: PREFIX`."""

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        return _compare(
            str(execution.get("namespace")), self.namespace, self.comparison, self.prefix
        )


def _compare(value: str, expected: str, comparison: Comparison | None, prefix: bool) -> bool:
    how = comparison or (Comparison.PREFIX if prefix else Comparison.EQUALS)
    if how is Comparison.PREFIX:
        return value.startswith(expected)
    if how is Comparison.SUFFIX:
        return value.endswith(expected)
    return value == expected


class ExecutionFlow(ExecutionCondition):
    """True when the execution is of the flow ``namespace``.``flowId``."""

    type_name: ClassVar[str] = "plait.core.condition.ExecutionFlow"
    kestra_names: ClassVar[tuple[str, ...]] = ("ExecutionFlow", "ExecutionFlowCondition")
    namespace: str
    flow_id: str

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        return bool(
            execution.get("namespace") == self.namespace and execution.get("flowId") == self.flow_id
        )


class ExecutionLabels(ExecutionCondition):
    """True when the execution has every one of ``labels`` (a map, or Kestra's key/value list)."""

    type_name: ClassVar[str] = "plait.core.condition.ExecutionLabels"
    kestra_names: ClassVar[tuple[str, ...]] = ("ExecutionLabels", "ExecutionLabelsCondition")
    labels: dict[str, Any] | list[dict[str, Any]]

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        wanted = _label_map(self.labels)
        have = execution.get("labels") or {}
        return all(str(have.get(k)) == str(v) and k in have for k, v in wanted.items())


def _label_map(labels: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(labels, dict):
        return labels
    return {str(p.get("key")): p.get("value") for p in labels}


class ExecutionOutputs(ExecutionCondition):
    """True when ``expression`` (a template over `trigger.outputs`) renders true."""

    type_name: ClassVar[str] = "plait.core.condition.ExecutionOutputs"
    kestra_names: ClassVar[tuple[str, ...]] = ("ExecutionOutputs", "ExecutionOutputsCondition")
    expression: str

    async def on(self, ctx: ConditionContext, execution: Mapping[str, Any]) -> bool:
        if not execution.get("outputs"):
            return False  # as Kestra: no outputs, nothing to test
        return _truthy(await ctx.render(self.expression, ctx.template_context()))


class Expression(Condition):
    """True when ``expression`` (a template over `trigger.*`, `flow.*`) renders true."""

    type_name: ClassVar[str] = "plait.core.condition.Expression"
    kestra_names: ClassVar[tuple[str, ...]] = ("Expression", "ExpressionCondition")
    expression: str

    async def test(self, ctx: ConditionContext) -> bool:
        return _truthy(await ctx.render(self.expression, ctx.template_context()))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "null", "none")
    return bool(value)


class FlowCondition(Condition):
    """True for the flow ``namespace``.``flowId`` (the flow the trigger belongs to)."""

    type_name: ClassVar[str] = "plait.core.condition.Flow"
    kestra_names: ClassVar[tuple[str, ...]] = ("FlowCondition",)
    namespace: str
    flow_id: str

    async def test(self, ctx: ConditionContext) -> bool:
        return ctx.namespace == self.namespace and ctx.flow_id == self.flow_id


class FlowNamespaceCondition(Condition):
    """True when the trigger's flow is in ``namespace`` (or below it with ``prefix``)."""

    type_name: ClassVar[str] = "plait.core.condition.FlowNamespace"
    kestra_names: ClassVar[tuple[str, ...]] = ("FlowNamespaceCondition",)
    namespace: str
    prefix: bool = False

    async def test(self, ctx: ConditionContext) -> bool:
        return _compare(ctx.namespace, self.namespace, None, self.prefix)


class Not(Condition):
    """True when none of ``conditions`` holds."""

    type_name: ClassVar[str] = "plait.core.condition.Not"
    kestra_names: ClassVar[tuple[str, ...]] = ("Not", "NotCondition")
    conditions: list[Condition] = Field(min_length=1)

    async def test(self, ctx: ConditionContext) -> bool:
        return not any([await c.test(ctx) for c in self.conditions])


class Or(Condition):
    """True when at least one of ``conditions`` holds."""

    type_name: ClassVar[str] = "plait.core.condition.Or"
    kestra_names: ClassVar[tuple[str, ...]] = ("Or", "OrCondition")
    conditions: list[Condition] = Field(min_length=1)

    async def test(self, ctx: ConditionContext) -> bool:
        return any([await c.test(ctx) for c in self.conditions])


CONDITION_TYPES: tuple[type[Condition], ...] = (
    DayWeek,
    DayWeekInMonth,
    Weekend,
    TimeBetween,
    DateTimeBetween,
    PublicHoliday,
    ExecutionStatus,
    ExecutionNamespace,
    ExecutionFlow,
    ExecutionLabels,
    ExecutionOutputs,
    HasRetryAttempt,
    Expression,
    FlowCondition,
    FlowNamespaceCondition,
    Not,
    Or,
)
KESTRA_PREFIXES = ("io.kestra.plugin.core.condition.", "io.kestra.core.models.conditions.types.")


def _registry() -> dict[str, type[Condition]]:
    found: dict[str, type[Condition]] = {}
    for cls in CONDITION_TYPES:
        found[cls.type_name] = cls
        for name in cls.kestra_names:
            for prefix in KESTRA_PREFIXES:
                found[prefix + name] = cls
    return found


REGISTRY = _registry()
#: Names of Kestra's condition types that are not built (a clear error instead of "unknown").
NOT_BUILT = {"MultipleCondition"}


def condition_names() -> list[str]:
    """Every accepted condition type name (Plait's and Kestra's aliases)."""
    return sorted(REGISTRY)


def parse_condition(value: Any) -> Condition:
    """A condition model from its YAML mapping; ``ValueError`` with a clear reason."""
    if isinstance(value, Condition):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise ValueError("a condition is a mapping with a `type`")
    name = value["type"]
    cls = REGISTRY.get(name)
    if cls is None:
        short = name.rsplit(".", 1)[-1]
        if short in NOT_BUILT:
            raise ValueError(
                f"condition type {name!r} is not supported (a flow trigger's `preconditions` "
                "replaces MultipleCondition)"
            )
        known = ", ".join(c.type_name for c in CONDITION_TYPES)
        raise ValueError(f"unknown condition type {name!r} (known: {known})")
    data = dict(value)
    if isinstance(data.get("conditions"), list) and cls in (Not, Or):
        data["conditions"] = [parse_condition(c) for c in data["conditions"]]
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        # One line per problem, named by property: "DayWeek: dayOfWeek: Field required".
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'condition'}: {e['msg']}"
            for e in error.errors()
        )
        raise ValueError(f"{cls.type_name.rsplit('.', 1)[-1]}: {reasons}") from None


def parse_conditions(value: Any) -> list[Condition]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("`conditions` is a list of conditions")
    return [parse_condition(v) for v in value]


async def check(conditions: list[Condition], ctx: ConditionContext) -> str | None:
    """``None`` when every condition holds, else why not (the first one that does not)."""
    for index, condition in enumerate(conditions):
        try:
            ok = await condition.test(ctx)
        except Exception as error:  # a template or date that does not evaluate: not met
            return f"condition {index + 1} ({condition.describe()}) failed: {error}"[:1000]
        if not ok:
            return f"condition {index + 1} ({condition.describe()}) is false"
    return None
