"""Realtime triggers: each enabled ``RealtimeTrigger`` runs as one long-lived task.

Its ``listen`` iterator yields a request per event; each starts one execution, persisted with
the trigger's durable state and the request's dedup key in one transaction (``_trigger_runs``)
before the iterator is resumed. A ``listen`` that raises or ends is logged, shown as the
trigger's last error and started again after an exponential back-off. The trigger loop's pass
calls :meth:`Listeners.sync` with the triggers that should run: a disabled or deleted flow, a
disabled trigger or a new revision cancels the task (and a new revision starts a new one);
:meth:`Listeners.close` cancels them all when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from plait_sdk import ExecutionRequest, RealtimeTrigger
from sqlalchemy.exc import DBAPIError

from plait.engine import Runner
from plait.flows import Flow, TriggerSpec
from plait.records import Execution
from plait.server import _trigger_runs as runs
from plait.storage import SqlRepository

log = logging.getLogger("plait.server.triggers")
#: Back-off after a failure: FIRST seconds, doubling up to MOST; reset after a run of HEALTHY.
BACKOFF_FIRST = 1.0
BACKOFF_MOST = 300.0
HEALTHY = 60.0
#: Retrying to persist one event while the database is unavailable: FIRST seconds, doubling
#: up to MOST, for as long as it takes (the event is held, the source not acknowledged).
PERSIST_FIRST = 0.2
PERSIST_MOST = 30.0
#: Failures of the database (not of the event): the event is kept and its persisting retried.
TRANSIENT: tuple[type[BaseException], ...] = (DBAPIError, OSError, TimeoutError)

Key = tuple[str, str, str]


class Listeners:
    """The realtime triggers' tasks, by (namespace, flow, trigger)."""

    def __init__(self, runner: Runner, repo: SqlRepository, spawn: Callable[..., object]) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn
        self._tasks: dict[Key, tuple[int, asyncio.Task[None]]] = {}

    def sync(self, wanted: dict[Key, tuple[Flow, int, TriggerSpec]]) -> None:
        """Run exactly the ``wanted`` triggers (at their revision): start the missing ones,
        cancel the others."""
        for key, (revision, task) in list(self._tasks.items()):
            want = wanted.get(key)
            if want is None or want[1] != revision or task.done():
                task.cancel()
                del self._tasks[key]
        for key, (flow, revision, spec) in wanted.items():
            if key not in self._tasks:
                task = asyncio.create_task(
                    self._keep_running(flow, revision, spec), name=f"trigger {key}"
                )
                self._tasks[key] = (revision, task)

    @property
    def running(self) -> set[Key]:
        return {k for k, (_, t) in self._tasks.items() if not t.done()}

    async def close(self) -> None:
        """Cancel every listener and wait for their clean-up (the server stops)."""
        tasks = [t for _, t in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_running(self, flow: Flow, revision: int, spec: TriggerSpec) -> None:
        delay = BACKOFF_FIRST
        trigger = spec.type_info.trigger_class.model_validate(spec.properties)
        assert isinstance(trigger, RealtimeTrigger)
        ctx = runs.trigger_context(self.runner, flow, spec)
        where = f"{flow.namespace}.{flow.id}/{spec.id}"
        while True:
            began = time.monotonic()
            try:
                await self._listen(flow, revision, spec, trigger, ctx)
                problem = "listen() ended"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the plugin's failure: its last error, then back off
                problem = ctx.masked(f"{type(error).__name__}: {error}"[:1000])
            if time.monotonic() - began >= HEALTHY:
                delay = BACKOFF_FIRST
            log.warning("realtime trigger %s failed: %s; again in %g s", where, problem, delay)
            with contextlib.suppress(Exception):  # the database may be what failed
                await runs.record(self.repo, flow, spec, datetime.now(UTC), problem)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MOST)

    async def _listen(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: RealtimeTrigger,
        ctx: runs.TriggerContext,
    ) -> None:
        stored = await runs.load(self.repo, flow, spec)
        trigger.load_state(stored.state)
        iterator = trigger.listen(ctx)
        try:
            async for request in iterator:
                # The state lives in this task alone: listen() is suspended while it is stored,
                # and resumed (the source acknowledged) only once the execution is persisted.
                execution = await self._persist(flow, revision, spec, trigger, stored, ctx, request)
                if execution is not None:
                    self.spawn(self.runner.drive(flow, execution), f"execution {execution.id}")
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _persist(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: RealtimeTrigger,
        stored: runs.Stored,
        ctx: runs.TriggerContext,
        request: ExecutionRequest,
    ) -> Execution | None:
        """Persist the execution an event asks for, retrying with back-off while the database
        fails: the event is never dropped, and ``listen`` stays suspended (its source not
        acknowledged) until it is stored. A failed transaction stored nothing; what
        ``execution_ended`` changed is kept in memory (it is told once) and stored with the
        execution."""
        delay = PERSIST_FIRST
        where = f"{flow.namespace}.{flow.id}/{spec.id}"
        while True:
            try:
                await runs.tell_ended(self.repo, trigger, stored, ctx)
                return await runs.start(
                    self.runner,
                    self.repo,
                    flow,
                    revision,
                    spec,
                    trigger,
                    stored,
                    ctx,
                    request,
                    datetime.now(UTC),
                )
            except TRANSIENT as error:
                problem = ctx.masked(f"{type(error).__name__}: {error}"[:1000])
                log.warning(
                    "realtime trigger %s: the event's execution could not be stored (%s); "
                    "again in %g s",
                    where,
                    problem,
                    delay,
                )
                with contextlib.suppress(Exception):  # the database is what failed
                    await runs.record(self.repo, flow, spec, datetime.now(UTC), problem)
                await asyncio.sleep(delay)
                delay = min(delay * 2, PERSIST_MOST)
