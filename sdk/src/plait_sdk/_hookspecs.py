"""The hook specifications: every way a plugin extends Plait.

A plugin is a module listed under the ``plait.plugins`` entry-point group. It implements any of
these hooks with the :data:`hookimpl` marker and declares the plugin-API range it supports::

    # acme_plait/plugin.py
    from plait_sdk import hookimpl

    PLAIT_PLUGIN_API = ">=1.0,<2"

    @hookimpl
    def register_tasks(register):
        register(Hello)

Registration hooks receive a ``register`` callback (rather than returning values) so the core can
stamp each registered type with the plugin and distribution it came from, and report a problem in
one registration without losing the others. Registration hooks run synchronously at discovery
(an ``async def`` one is reported as an error); ``plait_startup`` and ``plait_shutdown`` may be
``async def`` and are awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import pluggy

from plait_sdk._extensions import Blueprint, SecretBackend, StorageBackend
from plait_sdk._task import Task
from plait_sdk._trigger import Trigger

PROJECT_NAME = "plait"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function as a hook specification of the project ``plait``: the SDK declares every
hook with it, plugins never need it.

Example::

    @hookspec
    def register_tasks(register: RegisterTask) -> None:
        '''Register task types.'''
"""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as an implementation of one of the hooks (its name says which).

Example::

    from plait_sdk import hookimpl

    @hookimpl
    def register_tasks(register):
        register(Hello)
"""

TemplateExtensionKind = Literal["function", "filter", "test"]
"""What a template extension is: a ``function`` (``{{ rot13(x) }}``), a ``filter``
(``{{ x | rot13 }}``) or a ``test`` (``{% if x is palindrome %}``).

Example::

    register("palindrome", lambda s: s == s[::-1], kind="test")
"""


class RegisterTask(Protocol):
    """The ``register`` callback of ``register_tasks``: one call per task class.

    Example::

        register(Hello)
    """

    def __call__(self, task: type[Task], /) -> None: ...


class RegisterTrigger(Protocol):
    """The ``register`` callback of ``register_triggers``: one call per trigger class.

    Example::

        register(NewFiles)
    """

    def __call__(self, trigger: type[Trigger], /) -> None: ...


class RegisterTemplateExtension(Protocol):
    """The ``register`` callback of ``register_template_extensions``: a name, the function, and
    its :data:`TemplateExtensionKind`.

    Example::

        register("rot13", lambda s: codecs.encode(s, "rot13"), kind="filter")
    """

    def __call__(
        self, name: str, fn: Callable[..., Any], /, *, kind: TemplateExtensionKind = "function"
    ) -> None: ...


class RegisterTaskRunner(Protocol):
    """The ``register`` callback of ``register_task_runners``: one call per
    :class:`TaskRunner` subclass.

    Example::

        register(DockerRunner)
    """

    def __call__(self, runner: type[Any], /) -> None: ...


class RegisterSecretBackend(Protocol):
    """The ``register`` callback of ``register_secret_backends``: a backend name and a factory
    taking the configuration mapping the core offers.

    Example::

        register("vault", lambda config: VaultSecrets(os.environ["VAULT_ADDR"]))
    """

    def __call__(
        self, name: str, factory: Callable[[dict[str, Any]], SecretBackend], /
    ) -> None: ...


class RegisterStorageBackend(Protocol):
    """The ``register`` callback of ``register_storage_backends`` (experimental: collected, not
    used by the core yet).

    Example::

        register("s3", lambda config: S3Storage(**config))
    """

    def __call__(
        self, name: str, factory: Callable[[dict[str, Any]], StorageBackend], /
    ) -> None: ...


class RegisterCommand(Protocol):
    """The ``register`` callback of ``register_commands``: a ``click`` command or group, added
    under ``plait``.

    Example::

        register(my_click_group)
    """

    def __call__(self, command: Any, /) -> None: ...


class RegisterRoute(Protocol):
    """The ``register`` callback of ``register_routes`` (experimental: collected, not mounted by
    the server yet): an HTTP method, a path and an aiohttp handler.

    Example::

        register("GET", "/api/v1/acme/status", status)
    """

    def __call__(
        self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]], /
    ) -> None: ...


class RegisterBlueprint(Protocol):
    """The ``register`` callback of ``register_blueprints``: a :class:`Blueprint`, or a directory
    of ``<id>/blueprint.yaml`` + ``flow.yaml``.

    Example::

        register(Path(__file__).parent / "blueprints")
    """

    def __call__(self, blueprint: Blueprint | Path, /) -> None: ...


@hookspec
def register_tasks(register: RegisterTask) -> None:
    """Register task types: call ``register(TaskClass)`` once per :class:`~plait_sdk.Task`.

    The class's ``type_name`` (and ``aliases``) must be unique across installed plugins; a clash
    is reported against the plugin that registered second.

    Example::

        @hookimpl
        def register_tasks(register):
            register(Request)
            register(Download)
    """


@hookspec
def register_triggers(register: RegisterTrigger) -> None:
    """Register trigger types: ``register(TriggerClass)`` per polling, realtime or webhook trigger.

    Example::

        @hookimpl
        def register_triggers(register):
            register(NewObjectsTrigger)
    """


@hookspec
def register_template_extensions(register: RegisterTemplateExtension) -> None:
    """Add template functions, filters or tests: ``register(name, fn, kind="filter")``.

    Functions may be ``async def``; they run in the template sandbox and must not block.

    Example::

        @hookimpl
        def register_template_extensions(register):
            register("rot13", lambda s: codecs.encode(s, "rot13"), kind="filter")
    """


@hookspec
def register_task_runners(register: RegisterTaskRunner) -> None:
    """Add task runners (where a task's command runs): ``register(TaskRunnerSubclass)``.

    Tasks that run commands (the script tasks) select one with ``taskRunner: {type: NAME}``.

    Example::

        @hookimpl
        def register_task_runners(register):
            register(DockerRunner)
    """


@hookspec
def register_secret_backends(register: RegisterSecretBackend) -> None:
    """Add a secret backend: ``register(name, factory)``; ``factory(config)`` builds it.

    Users enable it by naming it in ``PLAIT_SECRET_BACKENDS`` (e.g. ``vault,store,env``). The
    ``config`` mapping holds what the core can offer (``path``: the secrets directory, and for the
    core's own backends the repository and key ring); a backend reads its own settings from its
    environment variables.

    Example::

        @hookimpl
        def register_secret_backends(register):
            register("vault", lambda config: VaultSecrets(os.environ["VAULT_ADDR"]))
    """


@hookspec
def register_storage_backends(register: RegisterStorageBackend) -> None:
    """Add an internal-storage backend: ``register(name, factory)``.

    Experimental: the core collects these (``PluginHost.storage_backends``) but does not use
    them yet; every run keeps its files on the local disk. The signature may change before a
    consumer exists.

    Example::

        @hookimpl
        def register_storage_backends(register):
            register("s3", lambda config: S3Storage(**config))
    """


@hookspec
def register_commands(register: RegisterCommand) -> None:
    """Add ``click`` commands or groups under ``plait``: ``register(command)``.

    Example::

        @hookimpl
        def register_commands(register):
            register(my_click_group)
    """


@hookspec
def register_routes(register: RegisterRoute) -> None:
    """Add server routes: ``register("GET", "/api/v1/acme/status", handler)``.

    ``handler`` is an aiohttp handler (``async def handler(request) -> web.Response``).

    Experimental: the core collects these (``PluginHost.routes``) but the server does not mount
    them yet. The signature may change before it does.

    Example::

        @hookimpl
        def register_routes(register):
            register("GET", "/api/v1/acme/status", status)
    """


@hookspec
def register_blueprints(register: RegisterBlueprint) -> None:
    """Offer flow blueprints in the catalogue: ``register(Blueprint(...))``, or
    ``register(directory)`` for a directory of ``<id>/blueprint.yaml`` + ``flow.yaml`` (read by
    the core with the guarded YAML loader of flow files).

    Example::

        @hookimpl
        def register_blueprints(register):
            register(Path(__file__).parent / "blueprints")  # the connector's package data
            register(Blueprint(id="s3.to-db", title="S3 to database", flow=FLOW_YAML))
    """


@hookspec
def plait_startup(settings: dict[str, Any]) -> Awaitable[None] | None:
    """Called once when a hub process starts (server or ``plait run``); may be ``async``.

    Example::

        @hookimpl
        async def plait_startup(settings):
            await warm_up_pool()
    """


@hookspec
def plait_shutdown() -> Awaitable[None] | None:
    """Called once when a hub process stops: close pools and clients; may be ``async``.

    Example::

        @hookimpl
        async def plait_shutdown():
            await ENGINES.dispose_all()
    """
