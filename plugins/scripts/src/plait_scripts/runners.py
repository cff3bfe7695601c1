"""Task runners for the script tasks: the SDK's contract, and the local process runner.

A script task prepares its files and its command, then hands the command to a
:class:`plait_sdk.TaskRunner` chosen by its ``taskRunner`` property (``{type: process}`` by
default). The contract, the registry and the ``register_task_runners`` hook live in the SDK, so a
container runner can come from another distribution::

    from plait_sdk import TaskRunner, hookimpl

    class DockerRunner(TaskRunner):
        '''Run the command in a container.'''
        type_name: ClassVar[str] = "acme.runner.Docker"
        image: str = "python:3.12-slim"

        async def run(self, command, *, env, cwd, on_line, cancel) -> int: ...

    @hookimpl
    def register_task_runners(register):
        register(DockerRunner)

after which ``taskRunner: {type: acme.runner.Docker, image: ...}`` selects it. A runner is a
model: its properties (camelCase in flows) are validated with the task, when the flow is.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from plait_sdk import (
    OnLine,
    OutputStream,
    TaskRunner,
    register_task_runner,
    task_runner_class,
    task_runner_types,
)
from pydantic import ConfigDict, ValidationError

from plait_scripts._process import run_process

__all__ = [
    "DEFAULT_RUNNER",
    "DockerFallbackRunner",
    "OnLine",
    "ProcessRunner",
    "Stream",
    "TaskRunner",
    "register_runner",
    "runner_for",
    "runner_types",
]


class ProcessRunner(TaskRunner):
    """Run the command as a local subprocess of the worker, in a process group of its own.

    Stopping it sends ``SIGTERM`` to the whole group, then ``SIGKILL`` five seconds later.
    """

    type_name: ClassVar[str] = "process"
    aliases: ClassVar[tuple[str, ...]] = (
        "plait.scripts.runner.Process",
        "io.kestra.plugin.core.runner.Process",
        "io.kestra.plugin.scripts.runner.Process",
    )

    type: str = "process"
    """`process` (or Kestra's `io.kestra.plugin.core.runner.Process`)."""

    async def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        on_line: OnLine,
        cancel: asyncio.Event,
    ) -> int:
        return await run_process(
            command,
            cwd=cwd,
            env=env,
            on_stdout=functools.partial(on_line, "stdout"),
            on_stderr=functools.partial(on_line, "stderr"),
            cancel=cancel,
        )


class DockerFallbackRunner(ProcessRunner):
    """Kestra's Docker task runner, accepted so that flows written for Kestra validate and run:
    no container runtime is driven from here, so the command runs as a local process and the
    task logs a warning naming the image it would have used (as for `containerImage`). Its
    other properties (`pullPolicy`, `volumes`, `cpu`...) are accepted and unused."""

    model_config = ConfigDict(extra="allow")

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.runner.docker.Docker"
    aliases: ClassVar[tuple[str, ...]] = ()

    type: str = "io.kestra.plugin.scripts.runner.docker.Docker"
    """Kestra's `io.kestra.plugin.scripts.runner.docker.Docker`."""
    image: str | None = None
    """The image Kestra would run the command in (`containerImage` of the task when unset)."""


DEFAULT_RUNNER = ProcessRunner()

#: Kept for plugins written against plait-scripts 0.1: the SDK names it OutputStream.
Stream = OutputStream

#: Kept for plugins written against plait-scripts 0.1: the registry is the SDK's.
register_runner = register_task_runner


def runner_types() -> list[str]:
    """The registered runner type names (without aliases), sorted."""
    return task_runner_types()


def runner_for(spec: Mapping[str, Any] | None) -> TaskRunner:
    """The runner a ``taskRunner`` property selects (the process runner when unset).

    Raises ``ValueError`` with a one-line message for an unknown type or invalid properties.
    """
    if spec is None:
        return DEFAULT_RUNNER
    kind = spec.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"taskRunner needs a type; available: {', '.join(runner_types())}")
    cls = task_runner_class(kind)
    if cls is None:
        raise ValueError(
            f"unknown taskRunner type {kind!r}: available: {', '.join(runner_types())} "
            "(scripts run as local processes; a container runner needs a plugin providing it)"
        )
    if cls is ProcessRunner and len(spec) == 1:
        return DEFAULT_RUNNER
    try:
        return cls.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors())
        raise ValueError(f"taskRunner {kind!r}: {problems}") from None


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    if error.get("type") == "extra_forbidden":
        return f"unknown property {where!r}"
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


register_runner(ProcessRunner)
register_runner(DockerFallbackRunner)
