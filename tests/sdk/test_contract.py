"""The plait-sdk contract: what a plugin author may rely on."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import plait_sdk
import plait_sdk.testing
import pluggy
import pytest
from plait.sdk_reference import PACKAGES, documentation, has_example
from plait_sdk import (
    Example,
    Output,
    RegisterTask,
    RunContext,
    Task,
    UserError,
    ValidationError,
    hookimpl,
    hookspec,
    type_schema,
)
from plait_sdk import _hookspecs as hookspecs
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

# -- hook specifications ----------------------------------------------------------------------

#: pluggy marks a hook specification by setting ``<project>_spec`` on the function.
SPEC_ATTRIBUTE = f"{hookspecs.PROJECT_NAME}_spec"


def hookspec_functions(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """Every function of ``module`` marked with the hookspec marker, by name."""
    return {
        name: fn
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and getattr(fn, SPEC_ATTRIBUTE, None) is not None
    }


def undocumented(module: types.ModuleType) -> list[str]:
    return sorted(
        name for name, fn in hookspec_functions(module).items() if not (fn.__doc__ or "").strip()
    )


HOOKSPECS = hookspec_functions(hookspecs)


def test_the_marker_finds_exactly_the_hooks_pluggy_knows() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    known = {name for name in vars(pm.hook) if not name.startswith("_")}
    assert set(HOOKSPECS) == known
    assert {"register_tasks", "register_triggers", "plait_startup", "plait_shutdown"} <= known


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_has_a_docstring_with_an_example(name: str) -> None:
    doc = inspect.getdoc(HOOKSPECS[name])
    assert doc, f"hookspec {name} has no docstring"
    assert "Example::" in doc, f"hookspec {name} documents no example"
    assert "@hookimpl" in doc


def test_the_docstring_check_catches_an_undocumented_hookspec() -> None:
    assert undocumented(hookspecs) == []

    fake = types.ModuleType("fake_hookspecs")

    @hookspec
    def documented() -> None:
        """Has one."""

    @hookspec
    def bare() -> None:
        pass

    @hookspec
    def blank() -> None:
        """ """

    def unmarked() -> None:
        pass

    fake.__dict__.update(documented=documented, bare=bare, blank=blank, unmarked=unmarked)
    assert undocumented(fake) == ["bare", "blank"]


# -- the public API ---------------------------------------------------------------------------


def public_names(module: types.ModuleType) -> set[str]:
    """Names bound in ``module`` that are public: no leading underscore, plus ``__version__``.

    Public subpackages (``plait_sdk.testing``) have their own ``__all__``; ``@py_*`` names are
    pytest's assertion rewriting (plait-sdk ships a pytest plugin, so pytest rewrites it).
    """
    names = {
        n
        for n, value in vars(module).items()
        if not n.startswith(("_", "@")) and not isinstance(value, types.ModuleType)
    }
    return names | ({"__version__"} & set(vars(module)))


def test_all_matches_the_public_names_exactly() -> None:
    exported = plait_sdk.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    defined = public_names(plait_sdk)
    assert sorted(defined - set(exported)) == [], "public but missing from __all__"
    assert sorted(set(exported) - defined) == [], "in __all__ but not defined"


def test_the_public_api_is_pinned() -> None:
    """A name added to or removed from the SDK is a decision: change this list with it (and the
    plugin API version: minor for an addition, major for a removal)."""
    assert sorted(plait_sdk.__all__) == [
        "BLUEPRINT_ID_PATTERN",
        "Blueprint",
        "CHILD_TASK_PARSER",
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
        "MASK",
        "Masker",
        "MetricType",
        "Model",
        "NamespaceFiles",
        "OnLine",
        "Output",
        "OutputStream",
        "PLUGIN_API_VERSION",
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
        "TERMINAL_STATES",
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


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_documented_with_an_example(package: types.ModuleType) -> None:
    """Constants and aliases too (their docstring is the string under the assignment); this is
    what docs/reference/sdk.md shows."""
    missing = [n for n, doc in documentation(package).items() if not has_example(doc)]
    assert missing == []


def test_documentation_is_the_names_own() -> None:
    # A Protocol without a docstring must not borrow typing.Protocol's (which has an example).
    class Bare(Protocol):
        def __call__(self) -> None: ...

    module = types.ModuleType("bare")
    module.__file__ = __file__
    module.__all__ = ["Bare"]  # type: ignore[attr-defined]
    module.Bare = Bare  # type: ignore[attr-defined]
    assert documentation(module) == {"Bare": ""}


def test_the_testing_package_exports_exactly_its_all() -> None:
    exported = plait_sdk.testing.__all__
    defined = public_names(plait_sdk.testing) - {"annotations"}
    assert sorted(exported) == sorted(defined)
    assert sorted(exported) == [
        "CapturedLog",
        "Decision",
        "Evaluation",
        "FakeClock",
        "FakeRun",
        "FlowableHarness",
        "HarnessContext",
        "HarnessStorage",
        "LogLine",
        "MemoryKeyValueStore",
        "MemoryNamespaceFiles",
        "Metric",
        "RENDERER_ENTRY_POINT",
        "TaskHarness",
        "TaskResult",
        "TemplateRenderer",
        "TriggerHarness",
    ]


@pytest.mark.parametrize(
    "name", [n for n in plait_sdk.testing.__all__ if n != "RENDERER_ENTRY_POINT"]
)
def test_every_testing_name_is_documented_with_an_example(name: str) -> None:
    doc = inspect.getdoc(getattr(plait_sdk.testing, name)) or ""
    assert "Example::" in doc or ">>>" in doc, f"plait_sdk.testing.{name} shows no example"


def test_everything_in_all_is_importable() -> None:
    namespace: dict[str, Any] = {}
    exec("from plait_sdk import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(plait_sdk.__all__)
    for name in plait_sdk.__all__:
        assert namespace[name] is getattr(plait_sdk, name)


def test_public_objects_live_in_the_sdk() -> None:
    for name in plait_sdk.__all__:
        obj = getattr(plait_sdk, name)
        module = getattr(obj, "__module__", None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert module is not None
            assert module.split(".")[0] == "plait_sdk", f"{name} comes from {module}"


def test_the_sdk_never_imports_the_core() -> None:
    code = (
        "import sys, plait_sdk\n"
        "core = sorted(m for m in sys.modules if m == 'plait' or m.startswith('plait.'))\n"
        "assert not core, core\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_hookimpl_is_exported_and_marks_plait_hooks() -> None:
    assert "hookimpl" in plait_sdk.__all__
    assert plait_sdk.hookimpl is hookspecs.hookimpl
    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert hookimpl.project_name == "plait"

    registered: list[type[Task]] = []

    class Plugin:
        @hookimpl
        def register_tasks(self, register: RegisterTask) -> None:
            register(Fetch)

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Plugin())
    pm.check_pending()
    pm.hook.register_tasks(register=registered.append)
    assert registered == [Fetch]


def test_plugin_api_version_is_a_plain_version() -> None:
    assert plait_sdk.PLUGIN_API_VERSION == "1.0"


# -- task schema ------------------------------------------------------------------------------


class FetchOutput(Output):
    status_code: int
    """The HTTP status code."""
    body_text: str | None = None


class Fetch(Task):
    """Fetch a URL and return its status."""

    type_name: ClassVar[str] = "acme.Fetch"
    aliases: ClassVar[tuple[str, ...]] = ("io.acme.http.Fetch",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(title="Fetch a page", code="type: acme.Fetch\nurl: https://example.com"),
    )

    url: str = Field(examples=["https://example.com/health"])
    """The address to fetch."""
    max_retries: int = 3
    """How many times a failed request is retried."""
    request_headers: dict[str, str] = Field(
        default_factory=dict, examples=[{"Accept": "application/json"}]
    )
    """Headers sent with the request."""

    async def run(self, ctx: RunContext) -> FetchOutput:
        return FetchOutput(status_code=200)


class Undocumented(Task):
    type_name: ClassVar[str] = "acme.Undocumented"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return type_schema(Fetch)


def test_schema_uses_camel_case_names(schema: dict[str, Any]) -> None:
    assert list(schema["properties"]) == ["url", "maxRetries", "requestHeaders"]
    assert schema["required"] == ["url"]
    assert schema["additionalProperties"] is False


def test_schema_descriptions_come_from_attribute_docstrings(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    assert props["url"]["description"] == "The address to fetch."
    assert props["maxRetries"]["description"] == "How many times a failed request is retried."
    assert props["requestHeaders"]["description"] == "Headers sent with the request."
    assert schema["description"] == "Fetch a URL and return its status."
    assert schema["title"] == "acme.Fetch"


def test_schema_carries_defaults_and_examples(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    assert props["maxRetries"]["default"] == 3
    assert props["maxRetries"]["type"] == "integer"
    assert "default" not in props["url"]
    assert props["url"]["examples"] == ["https://example.com/health"]
    assert props["requestHeaders"]["examples"] == [{"Accept": "application/json"}]
    assert schema["x-plait"]["examples"] == [
        {
            "title": "Fetch a page",
            "code": "type: acme.Fetch\nurl: https://example.com",
            "full": False,
        }
    ]


def test_schema_metadata_and_outputs(schema: dict[str, Any]) -> None:
    meta = schema["x-plait"]
    assert (meta["type"], meta["aliases"], meta["kind"], meta["flowable"]) == (
        "acme.Fetch",
        ["io.acme.http.Fetch"],
        "task",
        False,
    )
    outputs = meta["outputs"]
    assert list(outputs["properties"]) == ["statusCode", "bodyText"]
    assert outputs["properties"]["statusCode"]["description"] == "The HTTP status code."


def test_a_type_without_docstring_does_not_inherit_the_base_description() -> None:
    schema = type_schema(Undocumented)
    assert "description" not in schema
    assert schema["title"] == "acme.Undocumented"
    assert "outputs" not in schema["x-plait"]


def test_properties_validate_by_alias_and_by_name() -> None:
    by_alias = Fetch.model_validate({"url": "u", "maxRetries": 5, "requestHeaders": {"A": "b"}})
    by_name = Fetch.model_validate({"url": "u", "max_retries": 5, "request_headers": {"A": "b"}})
    assert by_alias == by_name
    assert by_alias.dump() == {"url": "u", "maxRetries": 5, "requestHeaders": {"A": "b"}}


@pytest.mark.parametrize("unknown", ["bogus", "maxRetry", "MaxRetries"])
def test_unknown_property_is_rejected(unknown: str) -> None:
    with pytest.raises(PydanticValidationError) as excinfo:
        Fetch.model_validate({"url": "https://example.com", unknown: 1})
    (error,) = excinfo.value.errors()
    assert (error["type"], error["loc"]) == ("extra_forbidden", (unknown,))


# -- user errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"file": "hello.yaml", "line": 7, "column": 11, "field": "tasks[0].type"},
            "hello.yaml:7:11: tasks[0].type: unknown task type",
        ),
        ({"file": "hello.yaml", "line": 7, "field": "id"}, "hello.yaml:7: id: unknown task type"),
        ({"file": "hello.yaml"}, "hello.yaml: unknown task type"),
        ({"file": "hello.yaml", "column": 3}, "hello.yaml: unknown task type"),
        ({"field": "inputs.name"}, "inputs.name: unknown task type"),
        ({}, "unknown task type"),
    ],
)
def test_user_error_formats_as_file_line_column_field_reason(
    kwargs: dict[str, Any], text: str
) -> None:
    error = UserError("unknown task type", **kwargs)
    assert str(error) == text
    assert error.reason == "unknown task type"
    assert isinstance(error, plait_sdk.PlaitError)


def test_validation_error_prints_one_line_per_problem() -> None:
    problems = [
        UserError("required", file="f.yaml", line=1, column=1, field="id"),
        UserError("unknown property 'x'", file="f.yaml", line=4, column=5, field="tasks[0].x"),
    ]
    error = ValidationError(problems, file="f.yaml")
    assert isinstance(error, UserError)
    assert str(error).splitlines() == [
        "f.yaml:1:1: id: required",
        "f.yaml:4:5: tasks[0].x: unknown property 'x'",
    ]
    assert error.reason == "2 problem(s) found"
