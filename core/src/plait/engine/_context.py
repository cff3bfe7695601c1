"""The RunContext a task gets: logs, secrets, metrics, storage, working directory, cancellation."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait_sdk import KeyValueStore, MetricType, RunContext, Storage, TaskLogger

from plait.engine._model import LogRecord, MetricRecord, TaskRun
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
    """Buffers an execution's log records (masked) until the runner flushes them."""

    def __init__(self, masker: Masker, echo: Callable[[LogRecord], None] | None = None) -> None:
        self.masker = masker
        self.pending: list[LogRecord] = []
        self.echo = echo

    def add(self, record: LogRecord) -> None:
        record.message = self.masker.mask(record.message)
        self.pending.append(record)
        if self.echo is not None:
            self.echo(record)

    def take(self) -> list[LogRecord]:
        taken, self.pending = self.pending, []
        return taken


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
            )
        )

    def debug(self, msg: str, *args: object) -> None:
        self._emit("DEBUG", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("INFO", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("WARNING", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("ERROR", msg, args)


class TaskRunContext(RunContext):
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
        log_level: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.flow_id = flow_id
        self.execution_id = run.execution_id
        self.task_id = run.task_id
        self.taskrun_id = run.id
        self.attempt = len(run.attempts)
        self._run = run
        self._log = TaskRunLogger(log, run, log_level)
        self._masker = masker
        self._storage = storage
        self._working_dir = working_dir  # created on first use: most tasks never need one
        self._render = render
        self._secret = secret
        self._metrics = metrics
        self._cancelled = False
        self._kv = kv

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
