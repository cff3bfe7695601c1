"""The flow language as data: what a flow file holds once parsed and validated.

Names follow Kestra's vocabulary (camelCase in YAML, snake_case here). A task entry keeps its
common fields (id, type, retry...) apart from its type-specific ``properties``; properties are
validated against the task type's own model, leniently where they hold templates (those are
checked again, typed, once rendered at run time).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from plait_sdk import ChildTask, FlowableTask, Model
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$"
_ID = re.compile(ID_PATTERN)
#: Input ids may be dotted (Kestra's ``request.name``, reached as ``inputs.request.name``).
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*(\.[a-zA-Z0-9][a-zA-Z0-9_-]*)*$"


# -- retry ------------------------------------------------------------------------------------


def is_template(value: Any) -> bool:
    """Whether ``value`` is text holding a template (rendered when the task runs)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _RetryBase(Model):
    max_attempts: int | str | None = None
    """Total attempts including the first; unlimited when unset (then maxDuration bounds it).
    On a task's retry, a template (``"{{ inputs.attempts }}"``) is rendered when the task runs."""

    @field_validator("max_attempts", mode="after")
    @classmethod
    def _attempts(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not is_template(value):
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"maxAttempts must be a whole number, got {value!r}") from None
        if isinstance(value, int) and value < 1:
            raise ValueError("maxAttempts must be at least 1")
        return value

    max_duration: timedelta | None = None
    """Stop retrying once this much time has passed since the first attempt started."""
    warning_on_retry: bool = False
    """End in WARNING rather than SUCCESS when a retry was needed."""

    @model_validator(mode="before")
    @classmethod
    def _spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "behavior" in data and "behavior" not in cls.model_fields:
            # Kestra's retry types all carry behavior; on a task, RETRY_FAILED_TASK (its
            # default) is what a task's retry does anyway.
            if str(data["behavior"]).upper() != RetryBehavior.RETRY_FAILED_TASK.value:
                raise ValueError(
                    f"behavior {data['behavior']} on a task's retry is not supported: a task's "
                    "retry retries that task (RETRY_FAILED_TASK); to run the flow again as a new "
                    "execution, set behavior: CREATE_NEW_EXECUTION on the flow's retry"
                )
            data = {k: v for k, v in data.items() if k != "behavior"}
        if "maxAttempt" in data:  # Kestra's spelling before 0.21
            if "maxAttempts" in data:
                raise ValueError("give maxAttempts or maxAttempt, not both")
            data = {("maxAttempts" if k == "maxAttempt" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _bounded(self) -> _RetryBase:
        if self.max_attempts is None and self.max_duration is None:
            raise ValueError("set maxAttempts or maxDuration, or the task could retry forever")
        return self


class ConstantRetry(_RetryBase):
    type: Literal["constant"]
    interval: timedelta
    """Delay between attempts."""


class ExponentialRetry(_RetryBase):
    type: Literal["exponential"]
    interval: timedelta
    """Delay before the first retry; multiplied by ``delayFactor`` each time."""
    max_interval: timedelta
    """Upper bound of a single delay."""
    delay_factor: float = Field(default=2.0, gt=1.0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)
    """Randomise each delay by up to this fraction (0.1 = +/-10%) to spread retries out."""


class RandomRetry(_RetryBase):
    type: Literal["random"]
    min_interval: timedelta
    max_interval: timedelta

    @model_validator(mode="after")
    def _ordered(self) -> RandomRetry:
        if self.min_interval > self.max_interval:
            raise ValueError("minInterval must not exceed maxInterval")
        return self


Retry = Annotated[ConstantRetry | ExponentialRetry | RandomRetry, Field(discriminator="type")]


class RetryBehavior(StrEnum):
    """What a flow-level ``retry`` retries."""

    RETRY_FAILED_TASK = "RETRY_FAILED_TASK"
    """Retry the failed task run in place, as if the task had this retry itself."""
    CREATE_NEW_EXECUTION = "CREATE_NEW_EXECUTION"
    """Mark the failed execution RETRIED and run the flow again as a new execution."""


class _FlowRetry(Model):
    @model_validator(mode="after")
    def _no_template(self) -> _FlowRetry:
        if is_template(getattr(self, "max_attempts", None)):
            raise ValueError("a flow's retry takes a number of attempts, not a template")
        return self

    behavior: RetryBehavior = RetryBehavior.RETRY_FAILED_TASK
    """``RETRY_FAILED_TASK``: every task without a retry of its own gets this one.
    ``CREATE_NEW_EXECUTION``: a FAILED execution is retried as a new execution of the same
    revision, inputs and labels; attempts and maxDuration count across those executions."""


class ConstantFlowRetry(ConstantRetry, _FlowRetry):
    pass


class ExponentialFlowRetry(ExponentialRetry, _FlowRetry):
    pass


class RandomFlowRetry(RandomRetry, _FlowRetry):
    pass


FlowRetry = Annotated[
    ConstantFlowRetry | ExponentialFlowRetry | RandomFlowRetry, Field(discriminator="type")
]


# -- inputs and outputs ----------------------------------------------------------------------


class InputType(StrEnum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    DATE = "DATE"
    TIME = "TIME"
    DURATION = "DURATION"
    JSON = "JSON"
    YAML = "YAML"
    URI = "URI"
    EMAIL = "EMAIL"
    FILE = "FILE"
    ENUM = "ENUM"
    SELECT = "SELECT"
    MULTISELECT = "MULTISELECT"
    SECRET = "SECRET"
    ARRAY = "ARRAY"


class Input(Model):
    """A typed flow input (``inputs.<id>`` in templates; a dotted id ``a.b`` is
    ``inputs.a.b``)."""

    id: str = Field(pattern=INPUT_ID_PATTERN)
    type: InputType
    description: str | None = None
    display_name: str | None = None
    required: bool = True
    defaults: Any = None
    # Validators, each meaningful for some types only (checked by the flow validator).
    validator: str | None = None
    """STRING: a regular expression the whole value must match."""
    min: Any = None
    """INT, FLOAT, DURATION: the smallest accepted value."""
    max: Any = None
    """INT, FLOAT, DURATION: the largest accepted value."""
    after: Any = None
    """DATETIME, DATE, TIME: values must be after this."""
    before: Any = None
    """DATETIME, DATE, TIME: values must be before this."""
    values: list[str] | None = None
    """ENUM, SELECT, MULTISELECT: the allowed values."""
    allow_custom_value: bool = False
    """SELECT, MULTISELECT: accept values outside ``values`` too."""
    item_type: InputType | None = None
    """ARRAY: the type of every item."""


class FlowOutput(Model):
    """A flow output, rendered when the execution ends (``outputs`` of the execution)."""

    id: str = Field(pattern=ID_PATTERN)
    type: InputType = InputType.STRING
    value: Any
    description: str | None = None


class ConcurrencyBehavior(StrEnum):
    QUEUE = "QUEUE"
    CANCEL = "CANCEL"
    FAIL = "FAIL"


class Concurrency(Model):
    """At most ``limit`` running executions of the flow; what to do with the next one."""

    limit: int = Field(ge=1)
    behavior: ConcurrencyBehavior = ConcurrencyBehavior.QUEUE


class PluginDefault(Model):
    """Default property values for every task of a type (``forced`` overrides the task's own)."""

    type: str
    values: dict[str, Any] = Field(default_factory=dict)
    forced: bool = False


# -- tasks and triggers ----------------------------------------------------------------------

#: Keys every task entry may have whatever its type; everything else is a property of the type.
TASK_COMMON_KEYS = frozenset(
    {
        "id",
        "type",
        "description",
        "retry",
        "timeout",
        "disabled",
        "allowFailure",
        "allowWarning",
        "runIf",
        "logLevel",
        "version",
    }
)


#: Keys every trigger entry may have whatever its type.
TRIGGER_COMMON_KEYS = frozenset(
    {"id", "type", "description", "disabled", "inputs", "conditions", "version"}
)


class TaskSpec(ChildTask):
    """One entry of ``tasks`` (or ``errors``, ``finally``, or a flowable task's children): the
    core's form of the SDK's :class:`~plait_sdk.ChildTask`, resolved and validated."""

    model_config = Model.model_config  # unknown keys refused (ChildTask keeps them)

    id: str = Field(pattern=ID_PATTERN)
    type: str
    description: str | None = None
    retry: Retry | None = None
    timeout: timedelta | str | None = None
    """A duration, or a template rendering one (rendered when the task runs)."""
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    """End in SUCCESS rather than WARNING (after ``allowFailure``, a failure too)."""
    run_if: Any = None
    """Skip the task unless this renders truthy."""
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] | None = None
    """Keep only this task's log lines at this level or above."""
    version: int | None = Field(default=None, ge=1)
    """The version of the task type to use; the latest installed when omitted."""
    properties: dict[str, Any] = Field(default_factory=dict)
    """The type's own properties, as written (templates unrendered)."""

    @field_validator("timeout", mode="after")
    @classmethod
    def _timeout(cls, value: timedelta | str | None) -> timedelta | str | None:
        if isinstance(value, str) and not is_template(value):
            # Reported as pydantic's own duration error (with its "write PT1H" hint).
            raise PydanticCustomError("time_delta_parsing", "not a valid ISO-8601 duration")
        return value

    # Filled by the flow validator once the type is resolved.
    _type_info: Any = PrivateAttr(default=None)
    _flowable: FlowableTask | None = PrivateAttr(default=None)
    _written_type: str | None = PrivateAttr(default=None)

    @property
    def written_type(self) -> str:
        """The type as the flow names it (a Kestra name stays one: ``task.type``), older
        names in their current form."""
        return self._written_type or self.type

    @model_validator(mode="before")
    @classmethod
    def _split_properties(cls, data: Any) -> Any:
        # Always split: a type may well have a property literally named "properties".
        if not isinstance(data, dict):
            return data
        common = {k: v for k, v in data.items() if k in TASK_COMMON_KEYS}
        common["properties"] = {k: v for k, v in data.items() if k not in TASK_COMMON_KEYS}
        return common

    def dump(self) -> dict[str, Any]:
        """The entry as written in a flow file (properties inline)."""
        data = self.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            exclude={"properties"},
            exclude_defaults=True,
        )
        data["id"], data["type"] = self.id, self.type
        return {**data, **self.properties}

    @property
    def type_info(self) -> Any:
        """The resolved :class:`~plait.plugins.TypeInfo` (set by validation)."""
        return self._type_info

    @property
    def flowable(self) -> FlowableTask | None:
        """For a flowable type: its validated model, children as :class:`TaskSpec` lists."""
        return self._flowable


def _conditions_schema(schema: dict[str, Any]) -> None:
    # Editors complete the condition types; each type's properties are checked at load.
    from plait.triggers import condition_names

    schema["items"] = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": condition_names()}},
    }


class TriggerSpec(Model):
    """One entry of ``triggers``."""

    id: str = Field(pattern=ID_PATTERN)
    type: str
    description: str | None = None
    disabled: bool = False
    inputs: dict[str, Any] = Field(default_factory=dict)
    """Inputs passed to the executions this trigger starts."""
    conditions: list[Any] = Field(
        default_factory=list, json_schema_extra=lambda schema: _conditions_schema(schema)
    )
    """Conditions (Kestra's `conditions:`): the trigger starts an execution only when every one
    holds (docs/triggers.md, Conditions)."""
    version: int | None = Field(default=None, ge=1)
    """The version of the trigger type to use; the latest installed when omitted."""
    properties: dict[str, Any] = Field(default_factory=dict)

    _type_info: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _split_properties(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        common = {k: v for k, v in data.items() if k in TRIGGER_COMMON_KEYS}
        common["properties"] = {k: v for k, v in data.items() if k not in TRIGGER_COMMON_KEYS}
        return common

    @field_validator("conditions", mode="before")
    @classmethod
    def _parse_conditions(cls, value: Any) -> Any:
        from plait.triggers import parse_conditions

        return parse_conditions(value)

    @property
    def type_info(self) -> Any:
        return self._type_info


# -- the flow ----------------------------------------------------------------------------------


class SlaType(StrEnum):
    MAX_DURATION = "MAX_DURATION"
    """Breached once the execution has run longer than ``duration``."""
    EXECUTION_ASSERTION = "EXECUTION_ASSERTION"
    """Breached when ``assert`` does not render true once the execution has ended."""


class SlaBehavior(StrEnum):
    FAIL = "FAIL"
    """The execution fails (its unfinished task runs are killed)."""
    CANCEL = "CANCEL"
    """The execution is cancelled (its unfinished task runs are killed)."""
    NONE = "NONE"
    """Nothing but a warning in the logs and the SLA's labels."""


class Sla(Model):
    """One service-level agreement of a flow (Kestra's ``sla``): what to do with an execution
    that runs too long (``MAX_DURATION``) or ends without meeting an assertion
    (``EXECUTION_ASSERTION``). Its ``labels`` are added to a breaching execution."""

    id: str = Field(pattern=ID_PATTERN)
    type: SlaType
    behavior: SlaBehavior
    duration: timedelta | None = None
    """``MAX_DURATION``: the longest an execution may run, counted from its creation."""
    assert_: str | None = Field(default=None, alias="assert")
    """``EXECUTION_ASSERTION``: an expression that must render true when the execution ends."""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_map(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(i, dict) and set(i) == {"key", "value"} for i in value):
                raise ValueError("a label list holds {key, value} pairs")
            value = {str(i["key"]): i["value"] for i in value}
        if isinstance(value, dict):
            return {str(k): _label_text(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Sla:
        if self.type is SlaType.MAX_DURATION and self.duration is None:
            raise ValueError("a MAX_DURATION sla needs a duration (such as PT8H)")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("the duration of an sla must be positive")
        if self.type is SlaType.EXECUTION_ASSERTION and not self.assert_:
            raise ValueError("an EXECUTION_ASSERTION sla needs an assert expression")
        return self


class Flow(Model):
    """A whole flow file."""

    id: str = Field(pattern=ID_PATTERN)
    namespace: str = Field(pattern=NAMESPACE_PATTERN)
    revision: int | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    inputs: list[Input] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(min_length=1)
    errors: list[TaskSpec] = Field(default_factory=list)
    finally_: list[TaskSpec] = Field(default_factory=list, alias="finally")
    after_execution: list[TaskSpec] = Field(default_factory=list)
    """Tasks run once the execution's state is decided (after errors and finally); they see it
    as ``execution.state`` and cannot change it."""
    outputs: list[FlowOutput] = Field(default_factory=list)
    triggers: list[TriggerSpec] = Field(default_factory=list)
    concurrency: Concurrency | None = None
    retry: FlowRetry | None = None
    timeout: timedelta | None = None
    sla: list[Sla] = Field(default_factory=list)
    """Kestra's service-level agreements (plait.engine._sla enforces them)."""
    disabled: bool = False
    plugin_defaults: list[PluginDefault] = Field(default_factory=list)

    # Deprecated forms the file uses (each names its current form); set by validation.
    _warnings: list[Any] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[Any]:
        """:class:`~plait_sdk.UserError` s for the deprecated forms this flow's file uses: they
        still run; ``plait flows upgrade`` rewrites them."""
        return self._warnings

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_map(cls, value: Any) -> Any:
        # Kestra accepts labels as a map or as a list of {key, value} pairs.
        if isinstance(value, list):
            pairs: dict[str, Any] = {}
            for item in value:
                if not isinstance(item, dict) or set(item) != {"key", "value"}:
                    raise ValueError("a label list holds {key, value} pairs")
                pairs[str(item["key"])] = item["value"]
            value = pairs
        if isinstance(value, dict):
            return {str(k): _label_text(v) for k, v in value.items()}
        return value

    @property
    def uid(self) -> str:
        return f"{self.namespace}.{self.id}"

    @property
    def task_retry(self) -> Retry | None:
        """The retry of every task that has none of its own (``RETRY_FAILED_TASK``)."""
        if self.retry is not None and self.retry.behavior is RetryBehavior.RETRY_FAILED_TASK:
            return self.retry
        return None

    @property
    def execution_retry(self) -> Retry | None:
        """The retry of the whole execution (``CREATE_NEW_EXECUTION``)."""
        if self.retry is not None and self.retry.behavior is RetryBehavior.CREATE_NEW_EXECUTION:
            return self.retry
        return None


def _label_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def all_task_specs(specs: list[TaskSpec]) -> list[TaskSpec]:
    """Every task spec in ``specs`` and, depth first, in their flowable children."""
    found: list[TaskSpec] = []
    stack = list(reversed(specs))
    while stack:
        spec = stack.pop()
        found.append(spec)
        if spec.flowable is not None:
            stack.extend(reversed(spec.flowable.child_specs()))
    return found
