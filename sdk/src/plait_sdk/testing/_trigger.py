"""Evaluate a polling trigger on a fake clock, as the server's poller would."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plait_sdk._errors import UserError
from plait_sdk._masking import Masker
from plait_sdk._trigger import ExecutionRequest, PollingTrigger
from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._context import HarnessContext, LogLine
from plait_sdk.testing._kv import MemoryKeyValueStore
from plait_sdk.testing._render import load_renderer
from plait_sdk.testing._storage import FileStore, HarnessStorage

#: As the server: the longest one evaluation may take, and the longest back-off after failures.
EVALUATION_TIMEOUT = 60.0
MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a trigger: when, what it returned, whether it would start an
    execution, and what it logged.

    Example::

        evaluation = await triggers.evaluate()
        assert evaluation.started and evaluation.request.variables["rows"]
    """

    at: datetime
    request: ExecutionRequest | None
    started: bool
    """Whether an execution would start (a request whose ``dedup_key`` was seen starts none)."""
    error: str | None
    """The trigger's failure as the server records it (``lastError``, masked)."""
    logs: tuple[LogLine, ...]


class TriggerHarness:
    """Evaluates one polling trigger as the server does, on a fake clock.

    The same trigger object is evaluated every time (what it keeps on itself lasts between
    evaluations, as on a server), as are its key-value store and files; a request's
    ``dedup_key`` starts at most one execution; an evaluation that raises is recorded as the
    trigger's last error and backs it off (interval doubled per failure, at most ten minutes),
    exactly as the server's poller does. Trigger properties are validated as written (the
    server does not render them: a trigger renders its own with ``ctx.render``).

    Example::

        triggers = TriggerHarness(NewRows, {"table": "orders", "interval": "PT1M"})
        first = await triggers.evaluate()          # now
        later = await triggers.advance(timedelta(minutes=5))   # the 5 evaluations due
        assert [e.started for e in later].count(True) == 1
    """

    def __init__(
        self,
        trigger: PollingTrigger | type[PollingTrigger],
        properties: Mapping[str, Any] | None = None,
        *,
        namespace: str = "tests",
        flow_id: str = "flow",
        trigger_id: str = "trigger",
        secrets: Mapping[str, str] | None = None,
        kv: Mapping[str, Any] | None = None,
        clock: FakeClock | None = None,
        root: Path | None = None,
    ) -> None:
        if isinstance(trigger, PollingTrigger):
            if properties is not None:
                raise TypeError("give properties with a trigger class, not with an instance")
            self.trigger = trigger
        else:
            self.trigger = trigger.model_validate(dict(properties or {}))
        self.namespace = namespace
        self.flow_id = flow_id
        self.trigger_id = trigger_id
        self.secrets: dict[str, str] = dict(secrets or {})
        self.clock = clock or FakeClock()
        self.masker = Masker()
        self.kv = MemoryKeyValueStore(namespace, self.clock)
        self.kv.seed(dict(kv or {}))
        root = root or Path(tempfile.mkdtemp(prefix="plait-trigger-"))
        self.store = FileStore(root / "storage")
        self.evaluations: list[Evaluation] = []
        """Every evaluation so far, in order."""
        self.executions: list[ExecutionRequest] = []
        """The requests that would have started an execution, in order."""
        self.seen_keys: set[str] = set()
        self.failures = 0
        self.due = self.clock.now()
        """When the next evaluation is due (now at first, as a newly deployed flow)."""
        prefix = f"triggers/{namespace}/{flow_id}/{trigger_id}"
        self.context = HarnessContext(
            namespace=namespace,
            flow_id=flow_id,
            execution_id="",
            task_id=trigger_id,
            taskrun_id="",
            attempt=1,
            masker=self.masker,
            storage=HarnessStorage(self.store, prefix, [prefix]),
            working_dir=root / "work",
            kv=self.kv,
            clock=self.clock,
            renderer=load_renderer(),
            template_context=lambda: {
                "flow": {"id": flow_id, "namespace": namespace},
                "kv": self._kv_function,
            },
            secret=self._secret,
        )
        """The one context every evaluation gets (its logs accumulate)."""

    async def _secret(self, name: str) -> str:
        if name not in self.secrets:
            raise UserError(f"secret '{name}' not found for namespace '{self.namespace}'")
        value = self.secrets[name]
        self.masker.add(value)
        return value

    async def _kv_function(
        self, key: str, namespace: str | None = None, errorOnMissing: bool = True
    ) -> Any:
        found = await self.kv.get(key, namespace=namespace)
        if found is None and errorOnMissing:
            raise UserError(
                f"kv('{key}'): no such key in namespace '{namespace or self.namespace}'"
            )
        return found

    @property
    def last_error(self) -> str | None:
        """The last evaluation's error, as the server shows it (``None`` after a success)."""
        return self.evaluations[-1].error if self.evaluations else None

    async def evaluate(self) -> Evaluation:
        """Evaluate now, whether due or not, and schedule the next evaluation."""
        now = self.clock.now()
        self.due = now + self.trigger.interval
        before = len(self.context.logs)
        request: ExecutionRequest | None = None
        error: str | None = None
        started = False
        try:
            request = await asyncio.wait_for(
                self.trigger.evaluate(self.context), EVALUATION_TIMEOUT
            )
        except Exception as failure:
            self.failures += 1
            backoff = min(self.trigger.interval * 2**self.failures, MAX_BACKOFF)
            self.due = now + max(backoff, self.trigger.interval)
            error = self.masker.mask(f"{type(failure).__name__}: {failure}"[:1000])
        else:
            self.failures = 0
            if request is not None and request.dedup_key not in self.seen_keys:
                started = True
                if request.dedup_key:
                    self.seen_keys.add(request.dedup_key)
                self.executions.append(request)
            if request is not None:  # stored (or its key seen): the server settles it
                try:
                    await self.trigger.settle(self.context, True)
                except Exception as failure:  # the server logs it and goes on
                    self.context.log.warning("settle failed: %s", failure)
        evaluation = Evaluation(now, request, started, error, tuple(self.context.logs[before:]))
        self.evaluations.append(evaluation)
        return evaluation

    async def advance(self, delta: timedelta) -> list[Evaluation]:
        """Move the clock forward by ``delta``, evaluating each time one is due on the way."""
        end = self.clock.now() + delta
        done = []
        while self.due <= end:
            self.clock.set(max(self.due, self.clock.now()))
            done.append(await self.evaluate())
        self.clock.set(end)
        return done

    def execution_ended(self, state: str) -> None:
        """Tell the trigger how an execution it started ended (``SUCCESS``, ``FAILED``...), as
        the server does when the trigger wants to know."""
        # The SDK has no typed hook for this yet (the server looks for the method too).
        tell = getattr(self.trigger, "execution_ended", None)
        if callable(tell):
            tell(state)
