"""Base classes for the three kinds of trigger: polling, realtime and webhook."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr

from plait_sdk._models import Model
from plait_sdk._task import Example

if TYPE_CHECKING:
    from plait_sdk._context import RunContext


class ExecutionRequest(Model):
    """What a trigger asks for: a new execution of its flow with these values.

    ``variables`` become ``trigger.<name>`` in the flow's templates.

    Example::

        >>> ExecutionRequest(variables={"rows": [1, 2]}).variables["rows"]
        [1, 2]
    """

    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    #: Identifies the event so a duplicate delivery starts no second execution.
    dedup_key: str | None = None


class Trigger(Model):
    """Common base of every trigger type: subclass :class:`PollingTrigger`,
    :class:`RealtimeTrigger` or :class:`WebhookTrigger`, never this one directly.

    Example::

        def is_trigger_type(cls: type) -> bool:
            return issubclass(cls, Trigger)  # polling, realtime and webhook triggers alike
    """

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The version of this type (see :attr:`Task.type_version`).
    type_version: ClassVar[int] = 1
    examples: ClassVar[tuple[Example, ...]] = ()


class StatefulTrigger(Trigger):
    """What polling and realtime triggers share: durable state, and hearing how the
    executions they started ended.

    **Durable state.** ``self.state`` is the trigger's own state (a cursor, the keys it has
    seen, "stopped"): an instance of ``state_model`` when the class sets one (typed), else a
    dict of JSON values. The server loads it from its database before every evaluation and
    writes it back in the SAME transaction as the execution the evaluation creates (with the
    request's ``dedup_key``), or after an evaluation that creates none. So a crash between
    "evaluated" and "execution created" neither loses nor duplicates: either both the new
    state and the execution are stored, or neither, and the next evaluation starts again from
    the old state. An evaluation that raises keeps nothing of what it changed. The state
    survives server restarts and new revisions of the flow; it must be JSON-serializable and
    small (it is read and written at each evaluation).

    **Never evaluated concurrently.** The server runs at most one of ``evaluate`` /
    ``listen`` / ``execution_ended`` of one trigger at a time, one trigger being one
    (namespace, flow, trigger id): the methods need no locks, and ``self.state`` is never read
    or written by two of them at once.

    **Executions ending.** A class that overrides :meth:`execution_ended` is told, once per
    execution it started, how it ended, before its next evaluation (across restarts too: the
    executions it waits for are kept with its state); what it changes in ``self.state`` is
    stored. ``plait.http.Trigger``'s ``stopAfter`` is built on it.

    Example::

        class Cursor(Model):
            last_id: int = 0

        class NewRows(PollingTrigger):  # a StatefulTrigger
            type_name: ClassVar[str] = "acme.NewRows"
            state_model: ClassVar[type[BaseModel] | None] = Cursor

            async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
                rows = await fetch_after(self.state.last_id)
                if not rows:
                    return None
                self.state.last_id = rows[-1]["id"]  # stored with the execution, atomically
                return ExecutionRequest(variables={"rows": rows})
    """

    #: The model of ``self.state`` (its fields need defaults); ``None``: a plain dict.
    state_model: ClassVar[type[BaseModel] | None] = None

    _state: Any = PrivateAttr(default=None)

    @property
    def state(self) -> Any:
        """The durable state: a ``state_model`` instance, or a dict of JSON values."""
        if self._state is None:
            self._state = self.state_model() if self.state_model is not None else {}
        return self._state

    def load_state(self, data: Mapping[str, Any] | None) -> None:
        """Set the state from its stored JSON form (the server calls it; ``None``: fresh)."""
        model = self.state_model
        if data is None:
            self._state = model() if model is not None else {}
        else:
            self._state = model.model_validate(data) if model is not None else dict(data)

    def dump_state(self) -> dict[str, Any]:
        """The state's JSON form, as the server stores it."""
        state = self.state
        if isinstance(state, BaseModel):
            return state.model_dump(mode="json")
        return dict(state)

    def execution_ended(self, execution_id: str, state: str) -> None:
        """An execution this trigger started ended in ``state`` (``SUCCESS``, ``FAILED``...).

        Override it to react (the default does nothing); change ``self.state`` to remember.
        """

    @classmethod
    def watches_executions(cls) -> bool:
        """Whether the class wants :meth:`execution_ended` (it overrides it)."""
        return cls.execution_ended is not StatefulTrigger.execution_ended


class PollingTrigger(StatefulTrigger):
    """A trigger evaluated every ``interval``; returns a request when the flow should start.

    The server never evaluates one trigger twice at once (an evaluation still running when the
    next interval comes is not doubled) and bounds each evaluation. Keep what must outlive an
    evaluation in ``self.state`` (durable, see :class:`StatefulTrigger`), not in other
    attributes (lost at a restart). A request's ``dedup_key`` starts at most one execution,
    across restarts too.

    Example::

        class SeenState(Model):
            seen: list[str] = []

        class NewFiles(PollingTrigger):
            type_name: ClassVar[str] = "acme.NewFiles"
            state_model: ClassVar[type[BaseModel] | None] = SeenState
            folder: str

            async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
                state = self.state
                files = await ctx.run_blocking(os.listdir, self.folder)
                new = sorted(set(files) - set(state.seen))
                state.seen = sorted(set(state.seen) | set(new))
                return ExecutionRequest(variables={"files": new}) if new else None
    """

    interval: timedelta = timedelta(seconds=60)
    """How often to evaluate, as an ISO-8601 duration (``PT30S``)."""

    @abc.abstractmethod
    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        """Check the outside world; a request starts an execution, ``None`` does nothing."""

    async def settle(self, ctx: RunContext, accepted: bool) -> None:
        """The server handled the request the last :meth:`evaluate` returned.

        ``accepted`` is True once it is durably handled (its execution and the trigger's state
        stored, or its ``dedup_key`` seen before, or the trigger's conditions not met), False
        when storing it failed (it will be offered again). Override it to acknowledge the
        event to its source only then, e.g. commit a transaction kept open since ``evaluate``
        (``plait.db.Trigger``'s ``afterSQL``). Called at most once per returned request, never
        for ``None``, never concurrently with ``evaluate``. The default does nothing.
        """


class RealtimeTrigger(StatefulTrigger):
    """A trigger that listens continuously and yields one request per event.

    The server runs ``listen`` as one long-lived task per trigger: each request it yields
    starts one execution (its ``variables`` as ``trigger.*``), persisted with ``self.state``
    and the ``dedup_key`` in one transaction before the iterator is resumed: acknowledge an
    event to its source after the ``yield`` returns. While the database cannot store it, the
    server retries with back-off and keeps the iterator suspended (the event is not lost).
    When ``listen``
    raises or ends, it is logged, shown as the trigger's last error, and started again after
    an exponential back-off (1 s doubling to 5 min; reset once it has run for a minute). It
    is cancelled (``asyncio.CancelledError`` at its ``await``) when the flow is disabled,
    changed or deleted, the trigger disabled, or the server stops: clean up in ``finally``.

    Example::

        async def listen(self, ctx):
            async for message in subscribe(self.topic):
                yield ExecutionRequest(variables={"message": message})
    """

    @abc.abstractmethod
    def listen(self, ctx: RunContext) -> AsyncIterator[ExecutionRequest]:
        """Yield a request per event until cancelled."""


class WebhookRequest(Model):
    """An incoming HTTP request as a webhook trigger sees it.

    Example::

        async def to_request(self, request: WebhookRequest, ctx: RunContext):
            event = json.loads(request.body)
            return ExecutionRequest(variables={"event": event, "path": request.path})
    """

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


class WebhookTrigger(Trigger):
    """A trigger fired by ``POST /api/v1/executions/webhook/{namespace}/{flowId}/{key}``.

    ``key`` is the secret part of the URL; :meth:`verify` checks a provider signature
    (constant-time) and :meth:`to_request` turns the payload into an execution request.

    Example::

        class Hook(WebhookTrigger):
            type_name: ClassVar[str] = "acme.Hook"
            secret: str

            async def verify(self, request: WebhookRequest, ctx: RunContext) -> bool:
                given = request.headers.get("x-acme-signature", "")
                wanted = hmac.new(self.secret.encode(), request.body, "sha256").hexdigest()
                return hmac.compare_digest(given, wanted)
    """

    key: str
    """The URL key; treat it like a password (use ``{{ secret('...') }}``)."""

    async def verify(self, request: WebhookRequest, ctx: RunContext) -> bool:
        """Check the request's authenticity (signature, timestamp); the default trusts the key."""
        return True

    async def to_request(self, request: WebhookRequest, ctx: RunContext) -> ExecutionRequest | None:
        """Map the request to an execution request; ``None`` ignores the delivery."""
        return ExecutionRequest(variables={"body": request.body.decode("utf-8", "replace")})
