"""The server's shared state: the runner, the token store, metrics and background executions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from plait.engine import Runner
from plait.flows import Flow, all_task_specs
from plait.records import Execution, LogRecord
from plait.server._auth import TokenStore
from plait.server._config import ServerConfig
from plait.server._metrics import Metrics
from plait.server._throttle import LoginThrottle
from plait.server._users import Sessions, UserStore
from plait.storage import SqlRepository

log = logging.getLogger("plait.server")
T = TypeVar("T")


class Hub:
    """One per server process. ``runner`` is set once the local home is open."""

    def __init__(self, config: ServerConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._runner: Runner | None = None
        self._tokens: TokenStore | None = None
        self._repo: SqlRepository | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._step_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.accepting = True
        self._sessions: Sessions | None = None
        self.throttle = LoginThrottle(
            max_failures=config.login_max_failures,
            lockout=config.login_lockout,
            lockout_max=config.login_lockout_max,
            window=config.login_failure_window,
            concurrency=config.login_concurrency,
            queue=config.login_queue,
        )
        #: Task id -> task type of each flow revision seen (the task-run duration histogram).
        self._types: dict[tuple[str, str, int], dict[str, str]] = {}
        self._learning: set[asyncio.Task[None]] = set()
        self._users: UserStore | None = None

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            raise RuntimeError("the server is not started")
        return self._runner

    @property
    def tokens(self) -> TokenStore:
        if self._tokens is None:
            raise RuntimeError("the server is not started")
        return self._tokens

    @property
    def repo(self) -> SqlRepository:
        """The runner's repository (SQL: the server's own tables live beside the engine's)."""
        if self._repo is None:
            raise RuntimeError("the server is not started")
        return self._repo

    @property
    def users(self) -> UserStore:
        if self._users is None:
            raise RuntimeError("the server is not started")
        return self._users

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            raise RuntimeError("the server is not started")
        return self._sessions

    def attach(self, runner: Runner, tokens: TokenStore) -> None:
        if not isinstance(runner.repo, SqlRepository):
            raise TypeError("the server needs a SQL repository")
        self._repo = runner.repo
        self._users = UserStore(runner.repo)
        self._sessions = Sessions(runner.repo, self.config.session_ttl)
        self._runner = runner
        self._tokens = tokens

    # -- engine callbacks ------------------------------------------------------------------------

    def on_log(self, record: LogRecord) -> None:
        self._wake()

    def on_step(self, execution: Execution) -> None:
        self.metrics.step(execution, self._types_of(execution))
        for key in (execution.id, f"replay:{execution.original_id}"):
            for waiter in self._step_waiters.pop(key, []):
                if not waiter.done():
                    waiter.set_result(None)
        self._wake()

    def know_flow(self, flow: Flow, revision: int) -> None:
        """Remember the task types of a flow revision (before its executions step)."""
        key = (flow.namespace, flow.id, revision)
        if key not in self._types:
            every = [*flow.tasks, *flow.errors, *flow.finally_, *flow.after_execution]
            registry = self.runner.host.registry if self._runner is not None else None
            self._types[key] = {s.id: _canonical(registry, s.type) for s in all_task_specs(every)}

    def _types_of(self, execution: Execution) -> dict[str, str] | None:
        key = (execution.namespace, execution.flow_id, execution.flow_revision)
        found = self._types.get(key)
        if found is None and self._runner is not None:
            # A recovered, restarted or replayed execution of a revision not seen yet.
            self._types[key] = {}
            task = asyncio.create_task(self._learn(*key))
            self._learning.add(task)
            task.add_done_callback(self._learning.discard)
        return found

    async def _learn(self, namespace: str, flow_id: str, revision: int) -> None:
        try:
            flow = await self.runner.flow_of(namespace, flow_id, revision)
        except Exception:  # the flow is gone: its task runs stay "unknown"
            return
        self._types.pop((namespace, flow_id, revision), None)
        self.know_flow(flow, revision)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, seconds: float) -> None:
        """Wait until a log line or a step was produced (or ``seconds`` passed)."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def start(
        self, coro: Coroutine[Any, Any, Execution], key: str, what: str
    ) -> Execution | None:
        """Run ``coro`` (which drives an execution) in the background and return once it
        stored its first step (``None``) or ended, whichever comes first (its result, or the
        error it raised before driving: a refused resume input, say)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._step_waiters.setdefault(key, []).append(waiter)
        task = self.spawn(coro, what)
        try:
            both: set[asyncio.Future[Any]] = {task, waiter}
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters = self._step_waiters.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._step_waiters.pop(key, None)
        if task.done():
            return task.result()
        return None

    # -- background executions ---------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=what)
        self.tasks.add(task)
        self.metrics.running.set(len(self.tasks))
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.metrics.running.set(len(self.tasks))
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning(
                "%s ended with an error: %s: %s", task.get_name(), type(error).__name__, error
            )
        self._wake()

    async def drain(self, grace: float) -> None:
        """Let running executions finish for ``grace`` seconds, then cancel the rest (their
        state is in the database: the next start-up recovers them)."""
        self.accepting = False
        pending = set(self.tasks)
        if pending and grace > 0:
            log.info("waiting up to %.0fs for %d running execution(s)", grace, len(pending))
            _done, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.info("%d execution(s) left for recovery at the next start", len(pending))


def _canonical(registry: Any, name: str) -> str:
    """A type's canonical name (``plait.core.Log`` for ``io.kestra.plugin.core.log.Log``)."""
    info = registry.resolve(name) if registry is not None else None
    return info.name if info is not None else name
