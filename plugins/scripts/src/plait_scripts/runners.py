"""Task runners: where and how a script task's command runs.

A script task prepares its files and its command, then hands the command to a :class:`TaskRunner`
chosen by its ``taskRunner`` property (``{type: process}`` by default). The runner starts the
command, passes every line of its output on as soon as it is written, stops it (with everything
it started) when asked to, and returns its exit code. Only the process runner exists today; a
container runner can come later from another distribution, which registers its class::

    from plait_scripts.runners import TaskRunner, register_runner

    class DockerRunner(TaskRunner):
        '''Run the command in a container.'''
        type_name: ClassVar[str] = "acme.runner.Docker"
        image: str = "python:3.12-slim"

        async def run(self, command, *, env, cwd, on_line, cancel) -> int: ...

    register_runner(DockerRunner)   # e.g. in its plugin's ``register_tasks`` hook

after which ``taskRunner: {type: acme.runner.Docker, image: ...}`` selects it. A runner is a
model: its properties (camelCase in flows) are validated with the task, when the flow is.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from plait_sdk import Model
from pydantic import ValidationError

from plait_scripts._process import run_process

Stream = Literal["stdout", "stderr"]
#: Receives each line of output (without its line ending) and the stream it was written to.
OnLine = Callable[[Stream, str], None]


class TaskRunner(Model, abc.ABC):
    """Runs a script task's command. Subclasses set ``type_name`` and implement :meth:`run`."""

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
        it started before returning (or before letting the cancellation propagate): nothing may
        outlive the call. Raise ``TaskFailure`` when the command cannot be started.
        """


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


_RUNNERS: dict[str, type[TaskRunner]] = {}
DEFAULT_RUNNER = ProcessRunner()


def register_runner(cls: type[TaskRunner]) -> type[TaskRunner]:
    """Make ``cls`` selectable by its ``type_name`` and aliases (usable as a decorator)."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    for name in (cls.type_name, *cls.aliases):
        known = _RUNNERS.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"task runner type {name!r} is already registered by {known}")
    for name in (cls.type_name, *cls.aliases):
        _RUNNERS[name] = cls
    return cls


def runner_types() -> list[str]:
    """The registered runner type names (without aliases), sorted."""
    return sorted({cls.type_name for cls in _RUNNERS.values()})


def runner_for(spec: Mapping[str, Any] | None) -> TaskRunner:
    """The runner a ``taskRunner`` property selects (the process runner when unset).

    Raises ``ValueError`` with a one-line message for an unknown type or invalid properties.
    """
    if spec is None:
        return DEFAULT_RUNNER
    kind = spec.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"taskRunner needs a type; available: {', '.join(runner_types())}")
    cls = _RUNNERS.get(kind)
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
