"""Task runners: where a task's command runs (a local process, a container...).

A runner is a model (its properties are validated with the task that selects it) with one
coroutine, :meth:`TaskRunner.run`. Tasks that run commands (the script tasks) look runners up
by type name here; plugins add runners with the ``register_task_runners`` hook, so a container
runner can come from its own distribution.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

from plait_sdk._models import Model

OutputStream = Literal["stdout", "stderr"]
"""Which of a command's output streams a line was written to.

Example::

    def on_line(stream: OutputStream, line: str) -> None:
        (errors if stream == "stderr" else lines).append(line)
"""
Stream = OutputStream

OnLine = Callable[[OutputStream, str], None]
"""Receives each line of a command's output (without its line ending) and the stream it was
written to, from the event loop; :meth:`TaskRunner.run` calls it.

Example::

    lines: list[str] = []
    on_line: OnLine = lambda stream, line: lines.append(f"{stream}: {line}")
    code = await runner.run(["echo", "hi"], env={}, cwd=workdir, on_line=on_line, cancel=cancel)
"""


class TaskRunner(Model, abc.ABC):
    """Runs a task's command. Subclasses set ``type_name`` and implement :meth:`run`.

    Example::

        class DockerRunner(TaskRunner):
            '''Run the command in a container.'''
            type_name: ClassVar[str] = "acme.runner.Docker"
            image: str = "python:3.12-slim"

            async def run(self, command, *, env, cwd, on_line, cancel) -> int: ...

        @hookimpl
        def register_task_runners(register):
            register(DockerRunner)
    """

    type_name: ClassVar[str] = ""
    #: Other names selecting this runner (Kestra's type names, for instance).
    aliases: ClassVar[tuple[str, ...]] = ()

    type: str
    """The runner's type name, as written in the flow."""

    @abc.abstractmethod
    async def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        on_line: OnLine,
        cancel: asyncio.Event,
    ) -> int:
        """Run ``command`` (program and arguments) in ``cwd`` with exactly ``env``.

        Call ``on_line`` for each line written on standard output or error, as it is written,
        from the event loop. Return the exit code (negative: killed by that signal). When
        ``cancel`` is set, or when this coroutine is cancelled, stop the command and everything
        it started before returning: nothing may outlive the call. Raise ``TaskFailure`` when
        the command cannot be started.
        """


_RUNNERS: dict[str, type[TaskRunner]] = {}


def register_task_runner(cls: type[TaskRunner]) -> type[TaskRunner]:
    """Make ``cls`` selectable by its ``type_name`` and aliases (the core calls this for every
    class a plugin registers through ``register_task_runners``; usable as a decorator).

    Example::

        @register_task_runner
        class DockerRunner(TaskRunner):
            type_name: ClassVar[str] = "acme.runner.Docker"
            ...
    """
    if not (isinstance(cls, type) and issubclass(cls, TaskRunner)):
        raise TypeError(f"{cls!r} is not a TaskRunner subclass")
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    for name in (cls.type_name, *cls.aliases):
        known = _RUNNERS.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"task runner type {name!r} is already registered by {known}")
    for name in (cls.type_name, *cls.aliases):
        _RUNNERS[name] = cls
    return cls


def task_runner_class(name: str) -> type[TaskRunner] | None:
    """The runner class a type name (or alias) selects, if any is registered.

    Example::

        cls = task_runner_class(spec["type"])
        runner = cls.model_validate(spec) if cls is not None else DEFAULT_RUNNER
    """
    return _RUNNERS.get(name)


def task_runner_types() -> list[str]:
    """The registered runner type names (without aliases), sorted.

    Example::

        raise ValueError(f"unknown taskRunner type; available: {', '.join(task_runner_types())}")
    """
    return sorted({cls.type_name for cls in _RUNNERS.values()})
