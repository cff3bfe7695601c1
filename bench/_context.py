"""The RunContext the connector benchmarks run tasks with: the least a task needs.

Internal storage on the local disk (the core's real ExecutionStorage), a working directory,
log lines counted and dropped, no secrets, no templates. Every context made in one process is a
task run of the same execution, so files pass from one task to the next as in a flow.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait.files import ExecutionStorage, LocalStorageBackend, execution_prefix
from plait_sdk import MetricType, RunContext, Storage, TaskLogger

P = ParamSpec("P")
T = TypeVar("T")

EXECUTION = uuid.uuid4().hex


class NullLog(TaskLogger):
    """Counts log lines and keeps nothing."""

    def __init__(self) -> None:
        self.lines = 0

    def _count(self, msg: str, *args: object) -> None:
        self.lines += 1

    debug = info = warning = error = _count


class BenchContext(RunContext):
    """A task run of the benchmark execution, its files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.namespace = "bench"
        self.flow_id = "bench"
        self.execution_id = EXECUTION
        self.task_id = "task"
        self.taskrun_id = uuid.uuid4().hex
        self.attempt = 1
        prefix = execution_prefix(self.namespace, self.flow_id, self.execution_id)
        self._storage = ExecutionStorage(
            LocalStorageBackend(root / "storage"), f"{prefix}/{self.taskrun_id}", [prefix]
        )
        self._log = NullLog()
        self._work = root / "work"
        self._work.mkdir(exist_ok=True)

    @property
    def log(self) -> NullLog:
        return self._log

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def working_dir(self) -> Path:
        return self._work

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return value

    async def secret(self, name: str) -> str:
        raise KeyError(name)

    def mask(self, value: str) -> None:
        pass

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        pass

    @property
    def cancelled(self) -> bool:
        return False

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
