"""Core runnable tasks: Log, Return, OutputValues, Sleep, Fail, Assert, Exit, Labels."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from plait_sdk import Example, Output, RunContext, Task, TaskFailure
from pydantic import Field, field_validator


class Level(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class Log(Task):
    """Write a message (or several) to the execution's logs."""

    type_name: ClassVar[str] = "plait.core.Log"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.log.Log",
        "io.kestra.core.tasks.log.Log",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Log a greeting with an input",
            code='id: hello\ntype: plait.core.Log\nmessage: "Hello {{ inputs.name }}"',
        ),
    )

    message: str | list[str]
    """The message, or a list of messages each logged on its own."""
    level: Level = Level.INFO
    """Log level: TRACE, DEBUG, INFO, WARN or ERROR."""

    async def run(self, ctx: RunContext) -> None:
        messages = [self.message] if isinstance(self.message, str) else self.message
        emit = {
            Level.TRACE: ctx.log.debug,
            Level.DEBUG: ctx.log.debug,
            Level.INFO: ctx.log.info,
            Level.WARN: ctx.log.warning,
            Level.ERROR: ctx.log.error,
        }[self.level]
        for message in messages:
            emit("%s", message)
        return None


class ReturnOutput(Output):
    value: str | None = None
    """The rendered ``format``, as text (as in Kestra)."""


class Return(Task):
    """Render a value and return it as ``outputs.<id>.value`` (handy for debugging)."""

    type_name: ClassVar[str] = "plait.core.Return"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.core.tasks.debugs.Return",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Return a computed value",
            code='id: r\ntype: plait.core.Return\nformat: "{{ 6 * 7 }}"',
        ),
    )

    format: str | None = None
    """The text to return; templates render as text (booleans ``true``, lists as JSON)."""

    @field_validator("format", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # A YAML scalar like `format: 42` is text to Kestra; lists and maps become JSON.
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, separators=(",", ":"), default=str)

    async def run(self, ctx: RunContext) -> ReturnOutput:
        return ReturnOutput(value=self.format)


class OutputValuesOutput(Output):
    values: dict[str, Any] = Field(default_factory=dict)
    """The rendered values."""


class OutputValues(Task):
    """Publish a map of values as ``outputs.<id>.values.<key>``."""

    type_name: ClassVar[str] = "plait.core.OutputValues"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.output.OutputValues",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Publish two values",
            code=(
                "id: out\ntype: plait.core.OutputValues\n"
                'values:\n  total: 3\n  name: "{{ flow.id }}"'
            ),
        ),
    )

    values: dict[str, Any] = Field(default_factory=dict)
    """The values to publish; templates are rendered."""

    async def run(self, ctx: RunContext) -> OutputValuesOutput:
        return OutputValuesOutput(values=self.values)


class Sleep(Task):
    """Wait for a duration without holding a worker thread."""

    type_name: ClassVar[str] = "plait.core.Sleep"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Sleep",)

    duration: timedelta
    """How long to wait, as an ISO-8601 duration (``PT5S``)."""

    async def run(self, ctx: RunContext) -> None:
        await asyncio.sleep(self.duration.total_seconds())
        return None


class Fail(Task):
    """Fail the task run (and so the execution, unless handled) with a message."""

    type_name: ClassVar[str] = "plait.core.Fail"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Fail",)

    condition: Any = None
    """Fail only when this renders truthy (``true``, non-empty); always fail when unset."""
    error_message: str = "Task failure"
    """The failure's message."""

    async def run(self, ctx: RunContext) -> None:
        if self.condition is None or _truthy(self.condition):
            raise TaskFailure(self.error_message)
        return None


class Assert(Task):
    """Fail unless every condition renders true (Kestra's Assert)."""

    type_name: ClassVar[str] = "plait.core.Assert"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Assert",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Check inputs before going on",
            code="""\
id: assert
namespace: company.team
inputs:
  - id: param
    type: STRING
    defaults: hello
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    errorMessage: "Invalid param {{ inputs.param }}"
    conditions:
      - "{{ inputs.param == 'hello' }}"
      - "{{ 1 + 1 == 2 }}"
""",
            full=True,
        ),
    )

    conditions: list[Any] = Field(min_length=1)
    """Templates that must each render true."""
    error_message: str | None = None
    """The failure's message (the failed conditions are logged either way)."""

    async def run(self, ctx: RunContext) -> None:
        failed = [n for n, value in enumerate(self.conditions, 1) if not _truthy(value)]
        for number in failed:
            ctx.log.error("assertion %d of %d failed", number, len(self.conditions))
        if failed:
            raise TaskFailure(
                self.error_message
                or f"{len(failed)} assertion(s) failed: "
                + ", ".join(f"condition {n}" for n in failed)
            )
        return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "-0", "no", "null", "none")
    return bool(value)


class ExitState(StrEnum):
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    KILLED = "KILLED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class ExitOutput(Output):
    state: ExitState
    """The state the execution ends in."""


class Exit(Task):
    """End the execution now, in the state given.

    No task of ``tasks``, ``errors`` or ``finally`` starts after it; the flow's
    ``afterExecution`` tasks still run. With ``KILLED`` the execution is killed (running tasks
    are cancelled, subflows killed); with any other state, tasks already running in other
    branches are left to finish first, and unfinished task runs end KILLED.
    """

    type_name: ClassVar[str] = "plait.core.Exit"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Exit",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Stop early, successfully, when there is nothing to do",
            full=True,
            code=(
                "id: nightly_load\nnamespace: company.team\ntasks:\n"
                '  - id: count\n    type: plait.core.Return\n    format: "0"\n'
                "  - id: nothing_to_do\n    type: plait.core.If\n"
                "    condition: \"{{ outputs.count.value == '0' }}\"\n"
                "    then:\n      - id: stop\n        type: plait.core.Exit\n"
                "        state: SUCCESS\n"
                "  - id: load\n    type: plait.core.Log\n    message: loading\n"
            ),
        ),
    )

    state: ExitState = ExitState.SUCCESS
    """SUCCESS, WARNING, KILLED, FAILED or CANCELED (Kestra's spelling)."""

    async def run(self, ctx: RunContext) -> ExitOutput:
        ctx.log.info("exit: the execution ends %s", self.state.value)
        ctx.end_execution(self.state.value)
        return ExitOutput(state=self.state)


class SetVariablesOutput(Output):
    variables: dict[str, Any]
    """The variables set."""
    overwrite: bool
    """Whether existing ones could be replaced."""


class SetVariables(Task):
    """Set execution variables: later tasks see them as ``{{ vars.<name> }}``.

    Maps are merged into existing maps rather than replacing them. With ``overwrite: false`` a
    name that already exists (in the flow's ``variables`` or set earlier) fails the task.
    """

    type_name: ClassVar[str] = "plait.core.SetVariables"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.SetVariables",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Remember a value for the rest of the execution",
            code=(
                "id: set\ntype: plait.core.SetVariables\n"
                'variables:\n  batch: "{{ outputs.count.value }}"'
            ),
        ),
    )

    variables: dict[str, Any]
    """The variables; values are rendered."""
    overwrite: bool = True
    """Replace variables that already exist; when false, an existing one fails the task."""

    async def run(self, ctx: RunContext) -> SetVariablesOutput:
        ctx.set_variables(self.variables, overwrite=self.overwrite)
        return SetVariablesOutput(variables=self.variables, overwrite=self.overwrite)


class UnsetVariablesOutput(Output):
    variables: list[str]
    """The variables removed."""
    ignore_missing: bool
    """Whether missing ones were ignored."""


class UnsetVariables(Task):
    """Remove execution variables (``a.b`` removes key ``b`` of map ``a``)."""

    type_name: ClassVar[str] = "plait.core.UnsetVariables"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.UnsetVariables",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Forget a temporary value",
            code="id: unset\ntype: plait.core.UnsetVariables\nvariables: [batch]",
        ),
    )

    variables: list[str]
    """Names of the variables to remove."""
    ignore_missing: bool = False
    """Skip names that are not set instead of failing."""

    async def run(self, ctx: RunContext) -> UnsetVariablesOutput:
        ctx.unset_variables(self.variables, ignore_missing=self.ignore_missing)
        return UnsetVariablesOutput(variables=self.variables, ignore_missing=self.ignore_missing)


class LabelsOutput(Output):
    labels: dict[str, str] = Field(default_factory=dict)


class Labels(Task):
    """Add or replace labels of the running execution."""

    type_name: ClassVar[str] = "plait.core.Labels"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Labels",)

    labels: dict[str, Any]
    """Labels to set; values are rendered and turned into text."""

    async def run(self, ctx: RunContext) -> LabelsOutput:
        text = {str(k): _label(v) for k, v in self.labels.items()}
        ctx.set_labels(text)
        return LabelsOutput(labels=text)


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
