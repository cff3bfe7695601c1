"""The flow language: model, loading and validation."""

from plait_sdk import TERMINAL_STATES, State

from plait.flows._flowable import FlowableTask
from plait.flows._inputs import coerce_inputs, coerce_value, nested_inputs
from plait.flows._legacy import Deprecation, older_type_names
from plait.flows._model import (
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
    TaskSpec,
    TriggerSpec,
    all_task_specs,
)
from plait.flows._upgrade import upgrade_text
from plait.flows._validate import load_flow, read_flow_file, validate_flow_text
from plait.flows._yaml import Document, Position, parse, safe_load

__all__ = [
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
    "InputType",
    "PluginDefault",
    "Position",
    "RandomRetry",
    "Retry",
    "RetryBehavior",
    "State",
    "TaskSpec",
    "TriggerSpec",
    "all_task_specs",
    "coerce_inputs",
    "coerce_value",
    "load_flow",
    "nested_inputs",
    "older_type_names",
    "parse",
    "read_flow_file",
    "safe_load",
    "upgrade_text",
    "validate_flow_text",
]
