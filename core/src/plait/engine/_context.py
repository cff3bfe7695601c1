"""The RunContext a task gets: logs, secrets, metrics, storage, working directory, cancellation."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait_sdk import (
    Effect,
    KeyValueStore,
    MetricType,
    NamespaceFiles,
    RunContext,
    Storage,
    TaskLogger,
    UserError,
)

from plait.limits import limits
from plait.records import LogRecord, MetricRecord, TaskRun
from plait.secrets import Masker

P = ParamSpec("P")
T = TypeVar("T")

_PYTHON_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}


class ExecutionLog:
    """Buffers an execution's log records (masked, within the log limits) until the runner
    flushes them.

    One line keeps at most ``log_line_max_bytes`` (then a marker says how many bytes were cut).
    A task's own lines (``ctx.log``, a script's output) stop being stored once its task run has
    ``log_max_lines_per_task_run`` lines or ``log_max_bytes_per_task_run`` bytes: the rest are
    counted, and :meth:`close_run` adds one summary line when the task run ends. The engine's
    lines about a task run (why it failed, a retry) are cut but never dropped.
    """

    def __init__(self, masker: Masker, echo: Callable[[LogRecord], None] | None = None) -> None:
        self.masker = masker
        self.pending: list[LogRecord] = []
        self.echo = echo
        self._budgets: dict[str | None, _Budget] = {}

    def add(self, record: LogRecord, *, from_task: bool = False) -> None:
        budget = self._budgets.get(record.taskrun_id)
        if budget is None:
            budget = self._budgets[record.taskrun_id] = _Budget()
        if from_task and budget.full is not None:
            budget.drop(record.message)  # not masked, nor kept: only counted
            return
        record.message = cut_line(self.masker.mask(record.message))
        size = len(record.message.encode("utf-8", "surrogatepass"))
        if from_task:
            lim = limits()
            if budget.lines + 1 > lim.log_max_lines_per_task_run:
                budget.full = ("log_max_lines_per_task_run", lim.log_max_lines_per_task_run)
            elif budget.bytes + size > lim.log_max_bytes_per_task_run:
                budget.full = ("log_max_bytes_per_task_run", lim.log_max_bytes_per_task_run)
            if budget.full is not None:
                budget.last = record
                budget.dropped_lines += 1
                budget.dropped_bytes += size
                return
        budget.lines += 1
        budget.bytes += size
        budget.last = record
        self._keep(record)

    def close_run(self, taskrun_id: str) -> None:
        """The task run ended: say how many of its lines were dropped, if any (once)."""
        budget = self._budgets.pop(taskrun_id, None)
        if budget is None or budget.full is None or budget.last is None:
            return
        last = budget.last
        name, value = budget.full
        self._keep(
            LogRecord(
                execution_id=last.execution_id,
                taskrun_id=last.taskrun_id,
                task_id=last.task_id,
                attempt=last.attempt,
                level="WARN",
                message=(
                    f"{budget.dropped_lines} more log lines ({budget.dropped_bytes} bytes) were "
                    f"dropped: limit {name} ({value}) reached, set with "
                    f"PLAIT_LIMIT_{name.upper()}"
                ),
            )
        )

    def close_all(self) -> None:
        """Summaries for every task run still holding dropped lines (the drive ends)."""
        for taskrun_id in [k for k in self._budgets if k is not None]:
            self.close_run(taskrun_id)

    def take(self) -> list[LogRecord]:
        taken, self.pending = self.pending, []
        return taken

    def _keep(self, record: LogRecord) -> None:
        self.pending.append(record)
        if self.echo is not None:
            self.echo(record)


class _Budget:
    """What one task run has logged so far."""

    __slots__ = ("bytes", "dropped_bytes", "dropped_lines", "full", "last", "lines")

    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.full: tuple[str, int] | None = None  # the limit reached: lines are being dropped
        self.last: LogRecord | None = None

    def drop(self, message: str) -> None:
        self.dropped_lines += 1
        self.dropped_bytes += len(message.encode("utf-8", "surrogatepass"))


_CUT = re.compile(r" \u2026 \[(\d+) bytes cut\]\Z")


def cut_line(message: str) -> str:
    """``message`` within ``log_line_max_bytes`` (UTF-8), else its start and a marker
    `` … [N bytes cut]``. A marker already at the end (a line cut before, by a script runner
    holding only part of a huge line) is added to, so N is always the whole count."""
    most = limits().log_line_max_bytes
    if len(message) <= most // 4:
        return message  # short enough whatever its characters
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= most:
        return message
    already = 0
    found = _CUT.search(message)
    if found is not None:
        already = int(found.group(1))
        data = message[: found.start()].encode("utf-8", "surrogatepass")
    head = data[:most].decode("utf-8", "ignore")  # never half a character
    cut = len(data) - len(head.encode("utf-8", "surrogatepass")) + already
    return f"{head} \u2026 [{cut} bytes cut]"


#: Log levels by rank, Kestra's names and Python's.
LEVEL_RANK = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}


class TaskRunLogger(TaskLogger):
    def __init__(self, sink: ExecutionLog, run: TaskRun, min_level: str | None = None) -> None:
        self._sink = sink
        self._run = run
        self._min = LEVEL_RANK[min_level] if min_level else 0  # the task's logLevel

    def _emit(self, level: str, msg: str, args: tuple[object, ...]) -> None:
        if LEVEL_RANK[level] < self._min:
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = " ".join([msg, *map(str, args)])
        self._sink.add(
            LogRecord(
                execution_id=self._run.execution_id,
                taskrun_id=self._run.id,
                task_id=self._run.task_id,
                attempt=len(self._run.attempts) or None,
                level=level,
                message=text,
            ),
            from_task=True,
        )

    def debug(self, msg: str, *args: object) -> None:
        self._emit("DEBUG", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("INFO", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("WARNING", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("ERROR", msg, args)


class ContextBase(RunContext):
    """The one implementation of the SDK's RunContext, for a task run (:class:`TaskRunContext`)
    and for a trigger's evaluation (the server's), which differ only in who they are and where
    their logs go. Metrics go to ``metrics`` (stored by the owner)."""

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        execution_id: str,
        task_id: str,
        taskrun_id: str,
        attempt: int,
        logger: TaskLogger,
        masker: Masker,
        storage: Storage,
        working_dir: Callable[[], Path],
        render: Callable[[Any, Mapping[str, Any] | None], Any],
        secret: Callable[[str], Any],
        metrics: list[MetricRecord],
        kv: KeyValueStore | None = None,
        namespace_files: NamespaceFiles | None = None,
    ) -> None:
        self.namespace = namespace
        self.flow_id = flow_id
        self.execution_id = execution_id
        self.task_id = task_id
        self.taskrun_id = taskrun_id
        self.attempt = attempt
        self._log = logger
        self._masker = masker
        self._storage = storage
        self._working_dir = working_dir  # created on first use: most tasks never need one
        self._render = render
        self._secret = secret
        self._metrics = metrics
        self._cancelled = False
        self._kv = kv
        self._namespace_files = namespace_files

    @property
    def log(self) -> TaskLogger:
        return self._log

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def kv(self) -> KeyValueStore:
        if self._kv is None:
            raise RuntimeError("no key-value store is configured for this runner")
        return self._kv

    @property
    def namespace_files(self) -> NamespaceFiles:
        if self._namespace_files is None:
            raise RuntimeError("no namespace file store is configured for this runner")
        return self._namespace_files

    @property
    def working_dir(self) -> Path:
        return self._working_dir()

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return await self._render(value, extra)

    async def secret(self, name: str) -> str:
        value: str = await self._secret(name)
        return value

    def mask(self, value: str) -> None:
        self._masker.add(value)

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self._metrics.append(
            MetricRecord(
                execution_id=self.execution_id,
                taskrun_id=self.taskrun_id,
                task_id=self.task_id,
                name=name,
                type=type,
                value=float(value),
                tags=dict(tags or {}),
            )
        )

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


class TaskRunContext(ContextBase):
    """One attempt of one task run."""

    def __init__(
        self,
        *,
        run: TaskRun,
        namespace: str,
        flow_id: str,
        log: ExecutionLog,
        masker: Masker,
        storage: Storage,
        working_dir: Callable[[], Path],
        render: Callable[[Any, Mapping[str, Any] | None], Any],
        secret: Callable[[str], Any],
        metrics: list[MetricRecord],
        kv: KeyValueStore | None = None,
        namespace_files: NamespaceFiles | None = None,
        log_level: str | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace,
            flow_id=flow_id,
            execution_id=run.execution_id,
            task_id=run.task_id,
            taskrun_id=run.id,
            attempt=len(run.attempts),
            logger=TaskRunLogger(log, run, log_level),
            masker=masker,
            storage=storage,
            working_dir=working_dir,
            render=render,
            secret=secret,
            metrics=metrics,
            kv=kv,
            namespace_files=namespace_files,
        )
        self._run = run
        #: What the task asked of its execution (labels, variables, its end): applied by the
        #: executor when the attempt succeeds.
        self.effects: list[Effect] = []

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)


# -- Kestra's run-context values -----------------------------------------------------------------

#: Kestra's ``kestra.variables.env-vars-prefix``: ``ENV_MY_VAR`` is ``{{ envs.my_var }}``.
ENVS_PREFIX_VARIABLE = "PLAIT_ENVS_PREFIX"
DEFAULT_ENVS_PREFIX = "ENV_"
#: Kestra's ``kestra.variables.globals``: a YAML (or JSON) mapping, ``{{ globals.<key> }}``.
GLOBALS_VARIABLE = "PLAIT_GLOBALS"


def kestra_date(value: datetime | None) -> str | None:
    """A date as Kestra renders an ``Instant``: ISO-8601 in UTC with the ``Z`` offset and the
    shortest of 0, 3 or 6 fraction digits (Java's ``Instant.toString``), e.g.
    ``2020-12-18T12:46:36.018869Z``; the date filters read it back."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    micros = utc.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def run_envs() -> dict[str, str]:
    """``envs``: the environment variables named with the prefix (``ENV_`` unless
    ``PLAIT_ENVS_PREFIX`` says otherwise), without it and in lower case, as Kestra does. Only
    prefixed variables: the rest of the environment (keys, tokens) never reaches a template."""
    prefix = os.environ.get(ENVS_PREFIX_VARIABLE, DEFAULT_ENVS_PREFIX)
    if not prefix:
        return {}  # an empty prefix would expose the whole environment: refused
    return {
        name[len(prefix) :].lower(): value
        for name, value in os.environ.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


def run_globals() -> dict[str, Any]:
    """``globals``: the mapping in ``PLAIT_GLOBALS`` (YAML or JSON), empty when unset."""
    text = os.environ.get(GLOBALS_VARIABLE)
    if not text:
        return {}
    return _parse_globals(text)


@functools.lru_cache(maxsize=4)
def _parse_globals(text: str) -> dict[str, Any]:
    from plait.flows import safe_load

    try:
        found = safe_load(text)
    except Exception as error:  # a YAML error of any kind: one clear message
        raise UserError(f"{GLOBALS_VARIABLE} is not valid YAML: {error}") from None
    if not isinstance(found, dict):
        raise UserError(f"{GLOBALS_VARIABLE} must hold a mapping, e.g. {{region: eu}}")
    return found
