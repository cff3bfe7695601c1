"""A small RunContext for running tasks and triggers directly, over real storage and templates.

Storage is the core's real execution storage over a temporary directory, templates are rendered
by the core's real template engine, and every log line is masked with the core's real masker, so
what a direct test sees is what a task sees inside the engine.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait.secrets import Masker
from plait.storage import ExecutionStorage, LocalStorageBackend
from plait.templating import TemplateEngine
from plait_sdk import MetricType, RunContext, Storage, TaskLogger, UserError

P = ParamSpec("P")
T = TypeVar("T")

PREFIX = "test/flow/executions/exec1"


class FakeLogger(TaskLogger):
    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self.records: list[tuple[str, str]] = []

    def _emit(self, level: str, msg: str, args: tuple[object, ...]) -> None:
        self.records.append((level, self.masker.mask(msg % args if args else msg)))

    def debug(self, msg: str, *args: object) -> None:
        self._emit("DEBUG", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("INFO", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("WARNING", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("ERROR", msg, args)


class FakeContext(RunContext):
    def __init__(self, root: Path, secrets: Mapping[str, str] | None = None) -> None:
        self.namespace = "test"
        self.flow_id = "flow"
        self.execution_id = "exec1"
        self.task_id = "task"
        self.taskrun_id = "run1"
        self.attempt = 1
        self.masker = Masker()
        self._log = FakeLogger(self.masker)
        self._storage = ExecutionStorage(
            LocalStorageBackend(root / "storage"), f"{PREFIX}/task/run1", [PREFIX]
        )
        self._workdir = root / "work"
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._secrets = dict(secrets or {})
        self.templates = TemplateEngine()
        self.metrics: list[tuple[str, float, str]] = []
        self.is_cancelled = False

    @property
    def log(self) -> TaskLogger:
        return self._log

    @property
    def logs(self) -> list[tuple[str, str]]:
        return self._log.records

    def log_text(self) -> str:
        return "\n".join(message for _, message in self._log.records)

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def working_dir(self) -> Path:
        return self._workdir

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        async def secret(name: str) -> str:
            return await self.secret(name)

        context = {"secret": secret, **(extra or {})}
        return await self.templates.render_value(value, context)

    async def secret(self, name: str) -> str:
        if name not in self._secrets:
            raise UserError(f"secret {name!r} not found")
        value = self._secrets[name]
        self.masker.add(value)
        return value

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
        self.metrics.append((name, float(value), type))

    @property
    def cancelled(self) -> bool:
        return self.is_cancelled

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
