"""The RunContext of the harness: what a task or trigger sees, recorded for the test to check."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, ParamSpec, TypeVar

from plait_sdk._context import (
    Effect,
    KeyValueStore,
    MetricType,
    NamespaceFiles,
    RunContext,
    TaskLogger,
)
from plait_sdk._masking import Masker
from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._render import TemplateRenderer, render_value
from plait_sdk.testing._storage import HarnessStorage

P = ParamSpec("P")
T = TypeVar("T")


class LogLine(NamedTuple):
    """One captured log line, masked as a real run stores it; a ``(level, message)`` pair.

    Example::

        >>> level, message = LogLine("INFO", "calling https://example.com")
        >>> level
        'INFO'
    """

    level: str
    """``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``."""
    message: str


class Metric(NamedTuple):
    """One recorded metric: a ``(name, value, type, tags)`` tuple.

    Example::

        >>> name, value, kind, tags = Metric("requests", 1.0, "counter", {"host": "a"})
        >>> kind
        'counter'
    """

    name: str
    value: float
    type: MetricType = "counter"
    tags: Mapping[str, str] = MappingProxyType({})


class CapturedLog(TaskLogger):
    """``ctx.log`` in the harness: each line is formatted, then masked with the execution's
    masker when it is logged, as the core stores it (a value masked only later stays visible in
    the lines before, exactly as in a real run's stored logs).

    Example::

        ctx.log.info("token %s", token)          # token read with ctx.secret()
        assert ctx.log.lines[-1] == LogLine("INFO", "token ******")
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self.lines: list[LogLine] = []

    def _emit(self, level: str, msg: str, args: tuple[object, ...]) -> None:
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = " ".join([msg, *map(str, args)])
        self.record(LogLine(level, self._masker.mask(text)))

    def record(self, line: LogLine) -> None:
        """Keep one formatted, masked line. Override it to capture differently (count the lines
        of a huge output without keeping them, stamp arrival times...)."""
        self.lines.append(line)

    def debug(self, msg: str, *args: object) -> None:
        self._emit("DEBUG", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("INFO", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("WARNING", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("ERROR", msg, args)


class HarnessContext(RunContext):
    """A complete :class:`~plait_sdk.RunContext` for tests, made by a harness.

    Everything a task does through it is kept: :attr:`logs` (masked), :attr:`metrics`,
    :attr:`files` it stored. Usable directly for a test that calls ``task.run(ctx)`` itself.

    Example::

        ctx = harness.context(task_id="fetch")
        output = await MyTask(url="https://example.com").run(ctx)
        assert "example.com" in ctx.log_text
    """

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        execution_id: str,
        task_id: str,
        taskrun_id: str,
        attempt: int,
        masker: Masker,
        storage: HarnessStorage,
        working_dir: Path,
        kv: KeyValueStore,
        clock: FakeClock,
        namespace_files: NamespaceFiles | None = None,
        renderer: TemplateRenderer,
        template_context: Callable[[], dict[str, Any]],
        secret: Callable[[str], Awaitable[str]],
        log: CapturedLog | None = None,
    ) -> None:
        self.namespace = namespace
        self.flow_id = flow_id
        self.execution_id = execution_id
        self.task_id = task_id
        self.taskrun_id = taskrun_id
        self.attempt = attempt
        self.masker = masker
        self._log = log or CapturedLog(masker)
        self._storage = storage
        self._working_dir = working_dir
        self._kv = kv
        self._namespace_files = namespace_files
        self.clock = clock
        self._renderer = renderer
        self._template_context = template_context
        self._secret = secret
        self.metrics: list[Metric] = []
        """Metrics recorded so far, in order."""
        self.is_cancelled = False
        """Set it to true to see how a task reacts to being killed (``ctx.cancelled``)."""
        self.effects: list[Effect] = []
        """The effects on the execution the task asked for (``ctx.set_labels``...), in order."""

    # -- what a test reads ---------------------------------------------------------------------

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    @property
    def logs(self) -> list[LogLine]:
        """The lines logged so far, masked."""
        return self._log.lines

    @property
    def log_text(self) -> str:
        """Every logged message, one per line (masked)."""
        return "\n".join(line.message for line in self._log.lines)

    def messages(self, level: str | None = None) -> list[str]:
        """The logged messages, of ``level`` only when given."""
        return [line.message for line in self._log.lines if level in (None, line.level)]

    @property
    def files(self) -> list[str]:
        """URIs of the files this task run stored, in order."""
        return list(self._storage.written)

    # -- RunContext ------------------------------------------------------------------------------

    @property
    def log(self) -> TaskLogger:
        return self._log

    @property
    def storage(self) -> HarnessStorage:
        return self._storage

    @property
    def working_dir(self) -> Path:
        self._working_dir.mkdir(parents=True, exist_ok=True)
        return self._working_dir

    @property
    def kv(self) -> KeyValueStore:
        return self._kv

    @property
    def namespace_files(self) -> NamespaceFiles:
        if self._namespace_files is None:
            raise NotImplementedError("this harness context has no namespace files")
        return self._namespace_files

    def now(self) -> datetime:
        return self.clock.now()

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        context = self._template_context()
        if extra:
            context = {**context, **extra}
        return await render_value(self._renderer, self.masker, context, self.secret, value)

    async def secret(self, name: str) -> str:
        return await self._secret(name)

    def mask(self, value: str) -> None:
        self.masker.add(value)

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics.append(Metric(name, float(value), type, dict(tags or {})))

    @property
    def cancelled(self) -> bool:
        return self.is_cancelled

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
