"""Plugin discovery and registration: the typed facade over pluggy's PluginManager.

Plugins are modules listed under the ``plait.plugins`` entry-point group and loaded with
stevedore. Each plugin's hook implementations are called one plugin at a time, so a failure is
attributed to the plugin that caused it and never stops the others from loading.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from plait_sdk import (
    PLUGIN_API_VERSION,
    Blueprint,
    RegisterBlueprint,
    RegisterCommand,
    RegisterRoute,
    RegisterSecretBackend,
    RegisterStorageBackend,
    RegisterTask,
    RegisterTaskRunner,
    RegisterTemplateExtension,
    RegisterTrigger,
    SecretBackend,
    StorageBackend,
    Task,
    TemplateExtensionKind,
    Trigger,
    ValidationError,
    register_task_runner,
)
from plait_sdk import _hookspecs as hookspecs
from stevedore import ExtensionManager

from plait.plugins._awaiting import resolve
from plait.plugins._blueprints import load_blueprints_each
from plait.plugins._registry import Origin, TypeClash, TypeInfo, TypeRegistry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "plait.plugins"
API_ATTRIBUTE = "PLAIT_PLUGIN_API"

#: Hooks called once per plugin at discovery, each given a ``register`` callback.
REGISTRATION_HOOKS = (
    "register_tasks",
    "register_triggers",
    "register_template_extensions",
    "register_task_runners",
    "register_secret_backends",
    "register_storage_backends",
    "register_commands",
    "register_routes",
    "register_blueprints",
)

Status = Literal["ok", "error", "incompatible"]


@dataclass
class PluginRecord:
    """What ``plait plugins list`` shows for one plugin."""

    name: str
    module: str
    distribution: str
    version: str
    status: Status = "ok"
    errors: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    api: str | None = None

    @property
    def origin(self) -> Origin:
        return Origin(self.name, self.distribution, self.version)

    def fail(self, message: str, status: Status = "error") -> None:
        self.errors.append(message)
        if self.status == "ok":
            self.status = status


@dataclass(frozen=True)
class TemplateExtension:
    name: str
    fn: Callable[..., Any]
    kind: str
    origin: Origin


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    origin: Origin


class PluginHost:
    """Everything plugins contributed, and the report of how loading went."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = TypeRegistry()
        self.records: list[PluginRecord] = []
        self.template_extensions: dict[str, TemplateExtension] = {}
        self.secret_backends: dict[str, tuple[Callable[[dict[str, Any]], Any], Origin]] = {}
        self.storage_backends: dict[str, tuple[Callable[[dict[str, Any]], Any], Origin]] = {}
        self.commands: list[tuple[Any, Origin]] = []
        self.routes: list[Route] = []
        self.blueprints: dict[str, tuple[Blueprint, Origin]] = self.registry.blueprints
        self.task_runners: list[tuple[type[Any], Origin]] = []

    # -- discovery ---------------------------------------------------------------------------

    @classmethod
    def discover(cls, *, entry_points: bool = True, extra: Sequence[ModuleType] = ()) -> PluginHost:
        """Load the built-in plugin, then every installed plugin, then ``extra`` modules."""
        host = cls()
        from plait import builtin

        core_dist = _distribution_version("plait")
        host.add_plugin(builtin.plugin, PluginRecord("core", builtin.plugin.__name__, *core_dist))
        if entry_points:
            host._load_entry_points()
        for module in extra:
            host.add_plugin(module, PluginRecord(module.__name__, module.__name__, "-", "-"))
        return host

    def _load_entry_points(self) -> None:
        dists = _entry_point_distributions()
        failures: list[PluginRecord] = []

        def on_failure(_manager: Any, entry_point: Any, error: BaseException) -> None:
            if isinstance(error, _ImportAborted) and error.__cause__ is not None:
                error = error.__cause__
            dist, version = dists.get((entry_point.name, entry_point.value), ("?", "?"))
            record = PluginRecord(entry_point.name, entry_point.value, dist, version)
            record.fail(f"import failed: {type(error).__name__}: {error}")
            failures.append(record)

        manager = _IsolatingExtensionManager(
            namespace=ENTRY_POINT_GROUP,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
        loaded: list[PluginRecord] = []
        found: list[tuple[PluginRecord, object]] = []
        for ext in manager.extensions:
            dist, version = dists.get((ext.name, ext.entry_point.value), ("?", "?"))
            found.append((PluginRecord(ext.name, ext.entry_point.value, dist, version), ext.plugin))
        # Register in a fixed order (not sys.path or directory-listing order), so which plugin
        # keeps a clashing type name is the same on every machine with the same plugins.
        found.sort(key=lambda item: (item[0].distribution.lower(), item[0].name))
        for record, plugin in found:
            if not isinstance(plugin, ModuleType):
                record.fail("the entry point must name a module of hook implementations")
                loaded.append(record)
                continue
            self.add_plugin(plugin, record)
        self.records.extend(loaded + failures)
        self.records.sort(key=lambda r: (r.name != "core", r.distribution, r.name))

    def add_plugin(self, module: ModuleType, record: PluginRecord) -> PluginRecord:
        """Register one plugin module and run its registration hooks, isolating its failures."""
        if record not in self.records:
            self.records.append(record)
        record.api = getattr(module, API_ATTRIBUTE, None)
        problem = _api_problem(record.api)
        if problem is not None:
            record.fail(problem, status="incompatible")
            return record
        try:
            self.pm.register(module, name=f"{record.distribution}:{record.name}")
        except Exception as error:  # pluggy validation: unknown hook arguments and the like
            record.fail(f"invalid hook implementation: {error}")
            return record
        callbacks = self._callbacks(record)
        for hook_name in REGISTRATION_HOOKS:
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin is not module:
                    continue
                try:
                    result = impl.function(register=callbacks[hook_name])
                    if inspect.isawaitable(result):
                        record.fail(f"{hook_name} must not be async (registration is synchronous)")
                        _close(result)
                except Exception as error:
                    record.fail(f"{hook_name} raised {type(error).__name__}: {error}")
        return record

    def _callbacks(self, record: PluginRecord) -> dict[str, Callable[..., None]]:
        """The ``register`` callback of each registration hook, typed as the SDK declares it
        (one per hook), each stamping what it registers with the plugin's origin."""
        origin = record.origin

        def add_type(hook_name: str, cls: object, kind: Literal["task", "trigger"]) -> None:
            base = Task if kind == "task" else Trigger
            if not (inspect.isclass(cls) and issubclass(cls, base)):
                record.fail(f"{hook_name}: {cls!r} is not a {base.__name__} subclass")
                return
            if not cls.type_name:
                record.fail(f"{hook_name}: {cls.__name__} has no type_name")
                return
            version = cls.type_version
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                record.fail(f"{hook_name}: {cls.__name__}.type_version must be a whole number >= 1")
                return
            info = TypeInfo(cls.type_name, cls, kind, origin, tuple(cls.aliases), version)
            try:
                self.registry.add(info)
            except TypeClash as clash:
                record.fail(f"{clash}; {cls.type_name} from {origin} was not registered")
                return
            if cls.type_name not in record.types:
                record.types.append(cls.type_name)

        def task(cls: type[Task], /) -> None:
            add_type("register_tasks", cls, "task")

        def trigger(cls: type[Trigger], /) -> None:
            add_type("register_triggers", cls, "trigger")

        def template_extension(
            name: str, fn: Callable[..., Any], /, *, kind: TemplateExtensionKind = "function"
        ) -> None:
            self.template_extensions[f"{kind}:{name}"] = TemplateExtension(name, fn, kind, origin)

        def task_runner(runner: type[Any], /) -> None:
            try:
                register_task_runner(runner)
            except (TypeError, ValueError) as error:
                record.fail(f"register_task_runners: {error}")
                return
            self.task_runners.append((runner, origin))

        def secret_backend(
            name: str, factory: Callable[[dict[str, Any]], SecretBackend], /
        ) -> None:
            self.secret_backends[name] = (factory, origin)

        def storage_backend(
            name: str, factory: Callable[[dict[str, Any]], StorageBackend], /
        ) -> None:
            self.storage_backends[name] = (factory, origin)

        def command(command: Any, /) -> None:
            self.commands.append((command, origin))

        def route(method: str, path: str, handler: Callable[[Any], Awaitable[Any]], /) -> None:
            self.routes.append(Route(method.upper(), path, handler, origin))

        def blueprint(given: Blueprint | Path, /) -> None:
            for found in _blueprints_of(given, record, "register_blueprints"):
                self._add_blueprint(found, record)

        # Checked against the SDK's callback protocols, so a plugin's view and ours agree.
        register_task: RegisterTask = task
        register_trigger: RegisterTrigger = trigger
        register_template_extension: RegisterTemplateExtension = template_extension
        register_task_runner_: RegisterTaskRunner = task_runner
        register_secret_backend: RegisterSecretBackend = secret_backend
        register_storage_backend: RegisterStorageBackend = storage_backend
        register_command: RegisterCommand = command
        register_route: RegisterRoute = route
        register_blueprint: RegisterBlueprint = blueprint
        return {
            "register_tasks": register_task,
            "register_triggers": register_trigger,
            "register_template_extensions": register_template_extension,
            "register_task_runners": register_task_runner_,
            "register_secret_backends": register_secret_backend,
            "register_storage_backends": register_storage_backend,
            "register_commands": register_command,
            "register_routes": register_route,
            "register_blueprints": register_blueprint,
        }

    def _add_blueprint(self, blueprint: Blueprint, record: PluginRecord) -> None:
        """The first registration of an id keeps it (the core, then the plugins in distribution
        order): a second is an error of the later plugin, naming both distributions, and a
        warning in the log, so neither silently replaces the other."""
        taken = self.blueprints.get(blueprint.id)
        if taken is None:
            self.blueprints[blueprint.id] = (blueprint, record.origin)
            return
        message = (
            f"blueprint '{blueprint.id}' of {record.origin} was not registered: "
            f"{taken[1]} already registers that id (rename one of them)"
        )
        if taken[1] == record.origin:
            message = f"blueprint '{blueprint.id}' is registered twice by {record.origin}"
        log.warning("plugin %s: %s", record.name, message)
        record.fail(message)

    # -- lifecycle ---------------------------------------------------------------------------

    async def startup(self, settings: dict[str, Any]) -> None:
        await self._call_each("plait_startup", settings=settings)

    async def shutdown(self) -> None:
        await self._call_each("plait_shutdown")

    async def _call_each(self, hook_name: str, **kwargs: Any) -> None:
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                await resolve(impl.function(**kwargs))
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)

    # -- queries -----------------------------------------------------------------------------

    def record_of(self, type_name: str) -> PluginRecord | None:
        return next((r for r in self.records if type_name in r.types), None)

    @property
    def healthy(self) -> bool:
        return all(r.status == "ok" for r in self.records)


class _ImportAborted(Exception):
    """Carries an import error that stevedore would let escape, so it stays one plugin's."""


class _IsolatingExtensionManager(ExtensionManager[Any]):
    """stevedore re-raises an ``AssertionError`` (and lets ``SystemExit`` through) from a
    plugin's import, which would abort discovery of every plugin: hand them to the failure
    callback like any other import error."""

    def _load_one_plugin(self, ep: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._load_one_plugin(ep, *args, **kwargs)
        except (AssertionError, SystemExit) as error:
            raise _ImportAborted(str(error)) from error


def _blueprints_of(given: object, record: PluginRecord, hook_name: str) -> list[Blueprint]:
    """A registered Blueprint, or those of a registered directory (each problem reported)."""
    if isinstance(given, Blueprint):
        return [given]
    if isinstance(given, Path):
        found, problems = load_blueprints_each(given)
        for problem in problems:
            # One status line per problem (a metadata file may have several).
            for one in problem.problems if isinstance(problem, ValidationError) else [problem]:
                record.fail(f"{hook_name}: invalid blueprint: {one}")
        return found
    record.fail(f"{hook_name}: {given!r} is not a Blueprint or a directory of them")
    return []


def _api_problem(declared: object) -> str | None:
    if declared is None:
        return None  # undeclared: assumed to follow the current major version
    if not isinstance(declared, str):
        return f"{API_ATTRIBUTE} must be a version specifier string, not {declared!r}"
    try:
        spec = SpecifierSet(declared)
    except InvalidSpecifier:
        return f"{API_ATTRIBUTE} {declared!r} is not a valid version specifier"
    if Version(PLUGIN_API_VERSION) not in spec:
        return f"supports plugin API {declared} but this Plait provides {PLUGIN_API_VERSION}"
    return None


def _distribution_version(name: str) -> tuple[str, str]:
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return name, "0+unknown"


def _entry_point_distributions() -> dict[tuple[str, str], tuple[str, str]]:
    """(entry-point name, value) -> (distribution, version), for stamping records."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if dist is not None:
            found[(ep.name, ep.value)] = (dist.metadata["Name"], dist.version)
    return found


def _close(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def iter_types(host: PluginHost, kinds: Iterable[str] = ("task", "trigger")) -> list[TypeInfo]:
    return [info for info in host.registry if info.kind in kinds]
