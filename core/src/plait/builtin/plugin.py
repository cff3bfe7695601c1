"""Hook implementations of the built-in plugin: the core tasks are a plugin like any other."""

from __future__ import annotations

from typing import Any

from plait_sdk import (
    RegisterBlueprint,
    RegisterSecretBackend,
    RegisterTask,
    RegisterTrigger,
    SecretBackend,
    hookimpl,
)

from plait.builtin.basic import (
    Assert,
    Exit,
    Fail,
    Labels,
    Log,
    OutputValues,
    Return,
    SetVariables,
    Sleep,
    UnsetVariables,
)
from plait.builtin.flowable import FLOWABLE_TASKS
from plait.builtin.kv import KV_TASKS
from plait.builtin.namespace import NAMESPACE_TASKS
from plait.builtin.storage import STORAGE_TASKS

PLAIT_PLUGIN_API = ">=1.0,<2"

RUNNABLE_TASKS = (
    Log,
    Return,
    OutputValues,
    Sleep,
    Fail,
    Assert,
    Exit,
    Labels,
    SetVariables,
    UnsetVariables,
)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    for task in (*RUNNABLE_TASKS, *KV_TASKS, *NAMESPACE_TASKS, *STORAGE_TASKS, *FLOWABLE_TASKS):
        register(task)


@hookimpl
def register_triggers(register: RegisterTrigger) -> None:
    from plait.triggers import FlowTrigger, Schedule, Webhook

    register(Webhook)
    register(Schedule)
    register(FlowTrigger)


@hookimpl
def register_secret_backends(register: RegisterSecretBackend) -> None:
    from plait.secrets import env_backend_factory, file_backend_factory

    register("store", _store_backend)
    register("env", env_backend_factory)
    register("file", file_backend_factory)


def _store_backend(config: dict[str, Any]) -> SecretBackend:
    """The encrypted store in the Plait database (needs the repository and the key ring)."""
    from plait.secrets import SecretStore

    return SecretStore(config["repository"], config["key_ring"], reload=config.get("reload_keys"))


@hookimpl
def register_blueprints(register: RegisterBlueprint) -> None:
    """The core's blueprint library (registry/blueprints), through the hook connectors use."""
    from plait.blueprints import library

    for blueprint in library():
        register(blueprint)
