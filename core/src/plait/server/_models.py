"""Request and response bodies of the API (the OpenAPI document is generated from these).

Field names are camelCase on the wire (``flowId``, ``taskRunList``) as in Kestra's API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pydantic
from plait_sdk import Model
from pydantic import Field

from plait.flows import State
from plait.records import Execution, FlowRevision, LogRecord, TaskRun, Transition
from plait.templating import masked_view

Role = Literal["viewer", "editor", "admin"]
MASKED = "******"


class ErrorBody(Model):
    """Every error: a message, the located problems (``file:line:column: field: reason``),
    and an id that matches one line of the server log."""

    message: str
    problems: list[str] = Field(default_factory=list)
    error_id: str
    status: int


class Health(Model):
    status: Literal["UP", "DOWN"]
    database: str | None = None
    migrations: str | None = None


# -- flows -----------------------------------------------------------------------------------


class FlowOut(Model):
    """A flow at one revision: its YAML source and the parsed definition."""

    id: str
    namespace: str
    revision: int
    created: datetime
    deleted: bool = False
    disabled: bool = False
    description: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)
    source: str
    definition: dict[str, Any] = Field(default_factory=dict)


class FlowSummary(Model):
    id: str
    namespace: str
    revision: int
    created: datetime
    deleted: bool = False


class FlowList(Model):
    results: list[FlowSummary]
    total: int


class RevisionList(Model):
    results: list[FlowSummary]


class FlowDiff(Model):
    from_revision: int = Field(alias="from")
    to_revision: int = Field(alias="to")
    diff: str


#: Revisions are stored as 32-bit integers: a larger number is a 400, not a database overflow.
MAX_REVISION = 2**31 - 1


class FlowQuery(Model):
    revision: int | None = Field(
        None, ge=1, le=MAX_REVISION, description="A past revision (default: latest)."
    )


class FlowUpdateQuery(Model):
    revision: int | None = Field(
        None,
        ge=1,
        le=MAX_REVISION,
        description="The revision this update edits: 409 when the flow has moved on since.",
    )


LABEL_PAIR = r"^[^:]+:.*$"


def _iso_only(value: Any) -> Any:
    """A date in a query is ISO 8601 text, not a number of seconds (which pydantic accepts)."""
    if isinstance(value, str) and not any(c in value for c in "-T:"):
        raise ValueError("expected an ISO 8601 date-time such as 2025-01-31T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, pydantic.BeforeValidator(_iso_only)]


class FlowSearchQuery(Model):
    namespace: str | None = Field(None, description="Namespace prefix.")
    q: str | None = Field(None, description="Part of the flow id.")
    labels: list[Annotated[str, Field(pattern=LABEL_PAIR)]] = Field(
        default_factory=list, description="key:value, all must match."
    )


class RollbackQuery(Model):
    revision: int = Field(
        ge=1, le=MAX_REVISION, description="The revision whose source becomes the latest."
    )


class DiffQuery(Model):
    from_revision: int = Field(alias="from", ge=1, le=MAX_REVISION)
    to_revision: int = Field(alias="to", ge=1, le=MAX_REVISION)


def aware(value: datetime) -> datetime:
    """A database timestamp as UTC (SQLite gives it back without its zone)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def flow_out(stored: FlowRevision, definition: dict[str, Any]) -> FlowOut:
    labels = definition.get("labels")
    description = definition.get("description")
    return FlowOut(
        id=stored.flow_id,
        namespace=stored.namespace,
        revision=stored.revision,
        created=aware(stored.created),
        deleted=stored.deleted,
        disabled=bool(definition.get("disabled", False)),
        description=description if isinstance(description, str) else None,
        labels=labels if isinstance(labels, dict) else {},
        source=stored.source,
        definition=definition,
    )


def flow_summary(stored: FlowRevision) -> FlowSummary:
    return FlowSummary(
        id=stored.flow_id,
        namespace=stored.namespace,
        revision=stored.revision,
        created=aware(stored.created),
        deleted=stored.deleted,
    )


# -- executions ------------------------------------------------------------------------------


class StateOut(Model):
    current: State
    histories: list[Transition]
    start_date: datetime | None = None
    end_date: datetime | None = None


class Label(Model):
    key: str = Field(min_length=1, max_length=255)
    value: str = Field(max_length=1024)


class AttemptOut(Model):
    number: int
    state: State
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None


class TaskRunOut(Model):
    id: str
    execution_id: str
    task_id: str
    parent_task_run_id: str | None = None
    value: Any = None
    iteration: int | None = None
    state: StateOut
    attempts: list[AttemptOut] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ExecutionTrigger(Model):
    """What started the execution, as Kestra shows it (the flow sees it as ``trigger.*``)."""

    id: str | None = None
    type: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class ExecutionOut(Model):
    """An execution as Kestra shows it: ``state.current``, ``taskRunList``, labels as pairs."""

    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: StateOut
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    labels: list[Label] = Field(default_factory=list)
    error: str | None = None
    parent_id: str | None = None
    original_id: str | None = None
    trigger: ExecutionTrigger | None = None
    task_run_list: list[TaskRunOut] = Field(default_factory=list)


class ExecutionList(Model):
    results: list[ExecutionOut]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class ExecutionCreate(Model):
    """Inputs and labels of a new execution as JSON (multipart form fields work too)."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ExecutionCreateQuery(Model):
    wait: bool = Field(False, description="Answer only once the execution ended or paused.")
    labels: list[Annotated[str, Field(pattern=LABEL_PAIR)]] = Field(
        default_factory=list, description="key:value labels (Kestra)."
    )
    revision: int | None = Field(None, ge=1, le=MAX_REVISION, description="Run this flow revision.")


class ExecutionSearchQuery(Model):
    namespace: str | None = Field(None, description="Namespace prefix.")
    flow_id: str | None = None
    state: list[State] = Field(default_factory=list)
    labels: list[Annotated[str, Field(pattern=LABEL_PAIR)]] = Field(
        default_factory=list, description="key:value, all must match."
    )
    start_date: IsoDatetime | None = Field(None, description="Created at or after (ISO 8601).")
    end_date: IsoDatetime | None = Field(None, description="Created before (ISO 8601).")
    size: int = Field(25, ge=1, le=500)
    cursor: str | None = Field(None, pattern=r"^[0-9a-z]{1,32}$")


class ResumeBody(Model):
    """The inputs the Pause task declares (``onResume``), as JSON (or multipart form fields)."""

    inputs: dict[str, Any] = Field(default_factory=dict)


class ReplayQuery(Model):
    task_run_id: str | None = Field(None, pattern=r"^[0-9a-z]{1,32}$")


class LogQuery(Model):
    min_level: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] | None = None
    task_run_id: str | None = Field(None, pattern=r"^[0-9a-z]{1,32}$")
    task_id: str | None = None


class LogLine(Model):
    seq: int | None = None
    execution_id: str
    task_run_id: str | None = None
    task_id: str | None = None
    attempt_number: int | None = None
    level: str
    message: str
    timestamp: datetime


class LogList(Model):
    results: list[LogLine]


class Deleted(Model):
    deleted: bool = True


# -- tokens ----------------------------------------------------------------------------------


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=128)
    role: Role = "viewer"
    namespace: str | None = Field(None, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")


class TokenOut(Model):
    id: str
    name: str
    role: Role
    namespace: str | None = None
    created: datetime
    revoked: datetime | None = None
    token: str | None = Field(None, description="The secret token: returned once, on creation.")


class TokenList(Model):
    results: list[TokenOut]


# -- conversions -----------------------------------------------------------------------------


def state_out(state: State, history: list[Transition]) -> StateOut:
    start = next((t.date for t in history if t.state is State.RUNNING), None)
    end = history[-1].date if history and state.terminal else None
    return StateOut(current=state, histories=history, start_date=start, end_date=end)


def task_run_out(run: TaskRun) -> TaskRunOut:
    return TaskRunOut(
        id=run.id,
        execution_id=run.execution_id,
        task_id=run.task_id,
        parent_task_run_id=run.parent_id,
        value=masked_view(run.value),
        iteration=run.iteration,
        state=state_out(run.state, run.history),
        attempts=[AttemptOut.model_validate(a.model_dump()) for a in run.attempts],
        outputs=masked_view(run.outputs),
        error=run.error,
    )


def execution_out(execution: Execution) -> ExecutionOut:
    # Sealed (stored) and live secret-derived values alike show as ******.
    inputs = masked_view(execution.inputs)
    return ExecutionOut(
        id=execution.id,
        namespace=execution.namespace,
        flow_id=execution.flow_id,
        flow_revision=execution.flow_revision,
        state=state_out(execution.state, execution.history),
        inputs=inputs,
        outputs=masked_view(execution.outputs),
        labels=[Label(key=k, value=v) for k, v in execution.labels.items()],
        error=execution.error,
        parent_id=execution.parent_execution_id,
        original_id=execution.original_id,
        trigger=_trigger_out(execution.trigger),
        task_run_list=[task_run_out(r) for r in execution.task_runs],
    )


def _trigger_out(trigger: dict[str, Any] | None) -> ExecutionTrigger | None:
    if not trigger:
        return None
    variables = {k: v for k, v in trigger.items() if k not in ("id", "type")}
    return ExecutionTrigger(
        id=trigger.get("id"), type=trigger.get("type"), variables=masked_view(variables)
    )


def log_line(record: LogRecord) -> LogLine:
    return LogLine(
        seq=record.seq,
        execution_id=record.execution_id,
        task_run_id=record.taskrun_id,
        task_id=record.task_id,
        attempt_number=record.attempt,
        level=record.level,
        message=record.message,
        timestamp=record.timestamp,
    )


class LabelList(pydantic.RootModel[list[Label]]):
    """Labels as Kestra sends them: a list of ``{"key", "value"}``."""


class LogLines(pydantic.RootModel[list[LogLine]]):
    """Log lines, oldest first."""
