"""plait-sdk: everything a Plait plugin depends on, and nothing else.

The public API is exactly ``__all__``; every other module is private.
"""

from plait_sdk._context import (
    Effect,
    EndExecution,
    EndState,
    KeyValueStore,
    MetricType,
    NamespaceFiles,
    RunContext,
    SetLabels,
    SetVariables,
    Storage,
    TaskLogger,
    UnsetVariables,
)
from plait_sdk._docstrings import DocumentedSchema, attribute_docstrings
from plait_sdk._errors import PlaitError, PluginError, TaskFailure, UserError, ValidationError
from plait_sdk._extensions import BLUEPRINT_ID_PATTERN, Blueprint, SecretBackend, StorageBackend
from plait_sdk._flowable import (
    CHILD_TASK_PARSER,
    ChildFlow,
    ChildRun,
    ChildTask,
    FlowableTask,
    FlowScope,
    TaskList,
)
from plait_sdk._globs import path_matcher
from plait_sdk._hookspecs import (
    RegisterBlueprint,
    RegisterCommand,
    RegisterRoute,
    RegisterSecretBackend,
    RegisterStorageBackend,
    RegisterTask,
    RegisterTaskRunner,
    RegisterTemplateExtension,
    RegisterTrigger,
    TemplateExtensionKind,
    hookimpl,
    hookspec,
)
from plait_sdk._masking import MASK, Masker
from plait_sdk._models import Model
from plait_sdk._runners import (
    OnLine,
    OutputStream,
    TaskRunner,
    register_task_runner,
    task_runner_class,
    task_runner_types,
)
from plait_sdk._schema import type_schema
from plait_sdk._state import TERMINAL_STATES, State
from plait_sdk._task import Example, Output, Task
from plait_sdk._trigger import (
    ExecutionRequest,
    PollingTrigger,
    RealtimeTrigger,
    StatefulTrigger,
    Trigger,
    WebhookRequest,
    WebhookTrigger,
)
from plait_sdk._version import PLUGIN_API_VERSION, __version__

__all__ = [
    "BLUEPRINT_ID_PATTERN",
    "CHILD_TASK_PARSER",
    "MASK",
    "PLUGIN_API_VERSION",
    "TERMINAL_STATES",
    "Blueprint",
    "ChildFlow",
    "ChildRun",
    "ChildTask",
    "DocumentedSchema",
    "Effect",
    "EndExecution",
    "EndState",
    "Example",
    "ExecutionRequest",
    "FlowScope",
    "FlowableTask",
    "KeyValueStore",
    "Masker",
    "MetricType",
    "Model",
    "NamespaceFiles",
    "OnLine",
    "Output",
    "OutputStream",
    "PlaitError",
    "PluginError",
    "PollingTrigger",
    "RealtimeTrigger",
    "RegisterBlueprint",
    "RegisterCommand",
    "RegisterRoute",
    "RegisterSecretBackend",
    "RegisterStorageBackend",
    "RegisterTask",
    "RegisterTaskRunner",
    "RegisterTemplateExtension",
    "RegisterTrigger",
    "RunContext",
    "SecretBackend",
    "SetLabels",
    "SetVariables",
    "State",
    "StatefulTrigger",
    "Storage",
    "StorageBackend",
    "Task",
    "TaskFailure",
    "TaskList",
    "TaskLogger",
    "TaskRunner",
    "TemplateExtensionKind",
    "Trigger",
    "UnsetVariables",
    "UserError",
    "ValidationError",
    "WebhookRequest",
    "WebhookTrigger",
    "__version__",
    "attribute_docstrings",
    "hookimpl",
    "hookspec",
    "path_matcher",
    "register_task_runner",
    "task_runner_class",
    "task_runner_types",
    "type_schema",
]
