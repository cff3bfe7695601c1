"""Task runners registered through the SDK hook reach the SDK's registry; clashes are reported."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import ClassVar

import pytest
from plait.plugins import PluginHost
from plait_sdk import TaskRunner, hookimpl, task_runner_class, task_runner_types
from plait_sdk import _runners as sdk_runners


class EchoRunner(TaskRunner):
    """Pretends to run the command."""

    type_name: ClassVar[str] = "test.runner.Echo"
    aliases: ClassVar[tuple[str, ...]] = ("io.example.Echo",)
    type: str = "test.runner.Echo"

    async def run(self, command, *, env, cwd, on_line, cancel) -> int:  # type: ignore[no-untyped-def]
        on_line("stdout", " ".join(command))
        return 0


class OtherEcho(EchoRunner):
    """Claims the same name."""


def _module(name: str, runner: type[TaskRunner]) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_task_runners(register):  # type: ignore[no-untyped-def]
        register(runner)

    module.register_task_runners = register_task_runners  # type: ignore[attr-defined]
    return module


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    before = dict(sdk_runners._RUNNERS)
    yield
    sdk_runners._RUNNERS.clear()
    sdk_runners._RUNNERS.update(before)


def test_a_runner_registered_by_a_plugin_is_selectable() -> None:
    host = PluginHost.discover(entry_points=False, extra=[_module("echo_plugin", EchoRunner)])
    assert task_runner_class("test.runner.Echo") is EchoRunner
    assert task_runner_class("io.example.Echo") is EchoRunner
    assert "test.runner.Echo" in task_runner_types()
    assert [cls for cls, _ in host.task_runners] == [EchoRunner]
    assert host.healthy


def test_a_clashing_runner_is_reported_not_registered() -> None:
    host = PluginHost.discover(
        entry_points=False,
        extra=[_module("echo_plugin", EchoRunner), _module("other_plugin", OtherEcho)],
    )
    assert task_runner_class("test.runner.Echo") is EchoRunner
    record = next(r for r in host.records if r.name == "other_plugin")
    assert record.status == "error"
    assert "already registered" in record.errors[0]
