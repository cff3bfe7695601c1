"""The polling loop: the plugins' ``PollingTrigger`` types (``plait.http.Trigger``,
``plait.db.Trigger``, ``plait.s3.Trigger``, any other) evaluated every ``interval``.

Each trigger is evaluated in its own task, never twice at once, bounded by a timeout; one that
raises or hangs gets its error recorded (``lastError``) and is backed off (doubling, at most
ten minutes) without slowing the others. Before each evaluation the trigger's durable state is
loaded from its row and the executions it waits for that ended are told
(``execution_ended``); the state it leaves is written in the transaction that creates the
execution (with the request's ``dedup_key``, under a primary key), so a crash in between
neither loses nor duplicates (``_trigger_runs``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from plait_sdk import PollingTrigger

from plait.engine import Runner
from plait.flows import Flow, TriggerSpec
from plait.server import _trigger_runs as runs
from plait.server._trigger_gate import acquire, release
from plait.storage import SqlRepository

log = logging.getLogger("plait.server.triggers")
#: The longest an evaluation may take, and the longest back-off after failures.
EVALUATION_TIMEOUT = 60.0
MAX_BACKOFF = timedelta(minutes=10)


class Poller:
    """Evaluates the polling triggers of one flow revision set; driven by the scheduler pass."""

    def __init__(self, runner: Runner, repo: SqlRepository, spawn: Callable[..., object]) -> None:
        self.runner = runner
        self.repo = repo
        self.spawn = spawn
        self._triggers: dict[
            tuple[str, str, int, str], tuple[PollingTrigger, runs.TriggerContext]
        ] = {}
        self._due: dict[tuple[str, str, str], datetime] = {}
        self._failures: dict[tuple[str, str, str], int] = {}
        self._running: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    def consider(self, flow: Flow, revision: int, spec: TriggerSpec, now: datetime) -> None:
        """Start an evaluation of this trigger if it is due and none is running."""
        key = (flow.namespace, flow.id, spec.id)
        running = self._running.get(key)
        if running is not None and not running.done():
            return
        if self._due.get(key, now) > now:
            return
        cache_key = (flow.namespace, flow.id, revision, spec.id)
        if cache_key not in self._triggers:
            trigger = spec.type_info.trigger_class.model_validate(spec.properties)
            ctx = runs.trigger_context(self.runner, flow, spec)
            assert isinstance(trigger, PollingTrigger)
            self._triggers[cache_key] = (trigger, ctx)
        trigger, ctx = self._triggers[cache_key]
        self._due[key] = now + trigger.interval
        task = asyncio.create_task(self._locked(flow, revision, spec, trigger, ctx, now))
        self._running[key] = task

    async def close(self) -> None:
        """Cancel the evaluations under way (the server stops)."""
        for task in self._running.values():
            task.cancel()
        await self.settle()

    async def settle(self) -> None:
        """Wait for the evaluations under way (tests, shutdown)."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _locked(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: PollingTrigger,
        ctx: runs.TriggerContext,
        now: datetime,
    ) -> None:
        """Evaluate under the trigger's lock in the database (another process holding it, or a
        dead one whose lock has not expired nor been unlocked, means: not now)."""
        if not await acquire(self.repo, flow, spec, self.runner.owner, now):
            return
        try:
            await self._evaluate(flow, revision, spec, trigger, ctx, now)
        finally:
            await release(self.repo, flow, spec, self.runner.owner)

    async def _evaluate(
        self,
        flow: Flow,
        revision: int,
        spec: TriggerSpec,
        trigger: PollingTrigger,
        ctx: runs.TriggerContext,
        now: datetime,
    ) -> None:
        key = (flow.namespace, flow.id, spec.id)
        try:
            # Always from the stored state: what a failed evaluation changed is forgotten.
            stored = await runs.load(self.repo, flow, spec)
            trigger.load_state(stored.state)
            if await runs.tell_ended(self.repo, trigger, stored, ctx):
                await runs.record(self.repo, flow, spec, now, None, trigger=trigger, stored=stored)
            request = await asyncio.wait_for(trigger.evaluate(ctx), EVALUATION_TIMEOUT)
        except Exception as error:  # a plugin's failure is its trigger's last error
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            backoff = min(trigger.interval * 2**failures, MAX_BACKOFF)
            self._due[key] = now + max(backoff, trigger.interval)
            text = ctx.masked(f"{type(error).__name__}: {error}"[:1000])
            log.warning("trigger %s.%s/%s failed: %s", *key, text)
            await runs.record(self.repo, flow, spec, now, text)
            return
        self._failures.pop(key, None)
        if request is None:
            await runs.record(self.repo, flow, spec, now, None, trigger=trigger, stored=stored)
            return
        try:
            execution = await runs.start(
                self.runner, self.repo, flow, revision, spec, trigger, stored, ctx, request, now
            )
        except Exception as error:
            await self._settle(trigger, ctx, key, accepted=False)
            await runs.record(self.repo, flow, spec, now, f"{type(error).__name__}: {error}"[:1000])
            return
        before = trigger.dump_state()
        await self._settle(trigger, ctx, key, accepted=True)
        if trigger.dump_state() != before:  # what settle changed (a commit confirmed) is kept
            await runs.record(self.repo, flow, spec, now, None, trigger=trigger, stored=stored)
        if execution is not None:
            self.spawn(self.runner.drive(flow, execution), f"execution {execution.id}")

    @staticmethod
    async def _settle(
        trigger: PollingTrigger, ctx: runs.TriggerContext, key: tuple[str, str, str], accepted: bool
    ) -> None:
        """Tell the trigger its request was (not) stored; its failure is logged, not retried
        (the request is handled: the trigger offers again what it did not acknowledge)."""
        try:
            await asyncio.wait_for(trigger.settle(ctx, accepted), EVALUATION_TIMEOUT)
        except Exception as error:
            text = ctx.masked(f"{type(error).__name__}: {error}"[:1000])
            log.warning("trigger %s.%s/%s: settle failed: %s", *key, text)
