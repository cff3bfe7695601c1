"""The flow language: model, loading and validation."""

from plait_sdk import TERMINAL_STATES, State

from plait.flows._files import flow_files
from plait.flows._flowable import FlowableTask
from plait.flows._inputs import InputError, coerce_inputs, coerce_value, nested_inputs
from plait.flows._legacy import Deprecation, older_type_names
from plait.flows._model import (
    ID_PATTERN,
    NAMESPACE_PATTERN,
    Concurrency,
    ConcurrencyBehavior,
    ConstantRetry,
    ExponentialRetry,
    Flow,
    FlowOutput,
    Input,
    InputType,
    PluginDefault,
    RandomRetry,
    Retry,
    RetryBehavior,
    Sla,
    SlaBehavior,
    SlaType,
    TaskSpec,
    TriggerSpec,
    all_task_specs,
)
from plait.flows._upgrade import upgrade_text
from plait.flows._validate import load_flow, read_flow_file, validate_flow_text
from plait.safeyaml import Document, Position, parse, safe_load

__all__ = [
    "ID_PATTERN",
    "NAMESPACE_PATTERN",
    "TERMINAL_STATES",
    "Concurrency",
    "ConcurrencyBehavior",
    "ConstantRetry",
    "Deprecation",
    "Document",
    "ExponentialRetry",
    "Flow",
    "FlowOutput",
    "FlowableTask",
    "Input",
    "InputError",
    "InputType",
    "PluginDefault",
    "Position",
    "RandomRetry",
    "Retry",
    "RetryBehavior",
    "Sla",
    "SlaBehavior",
    "SlaType",
    "State",
    "TaskSpec",
    "TriggerSpec",
    "all_task_specs",
    "coerce_inputs",
    "coerce_value",
    "flow_files",
    "load_flow",
    "nested_inputs",
    "older_type_names",
    "parse",
    "read_flow_file",
    "safe_load",
    "upgrade_text",
    "validate_flow_text",
]
