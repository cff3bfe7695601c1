"""Base classes for the three kinds of trigger: polling, realtime and webhook."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

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
    """Common base of every trigger type (see the three subclasses)."""

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The version of this type (see :attr:`Task.type_version`).
    type_version: ClassVar[int] = 1
    examples: ClassVar[tuple[Example, ...]] = ()


class PollingTrigger(Trigger):
    """A trigger evaluated every ``interval``; returns a request when the flow should start.

    The server never evaluates one trigger twice at once (an evaluation still running when the
    next interval comes is not doubled), bounds each evaluation, and keeps the same object for
    a flow revision while it runs, so attributes set on it last between evaluations (not across
    restarts). A request's ``dedup_key`` starts at most one execution, across restarts too. An
    ``execution_ended(state)`` method, when the trigger has one, is told how each execution it
    started ended.

    Example::

        class NewFiles(PollingTrigger):
            type_name: ClassVar[str] = "acme.NewFiles"
            folder: str

            async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
                files = await ctx.run_blocking(os.listdir, self.folder)
                return ExecutionRequest(variables={"files": files}) if files else None
    """

    interval: timedelta = timedelta(seconds=60)
    """How often to evaluate, as an ISO-8601 duration (``PT30S``)."""

    @abc.abstractmethod
    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        """Check the outside world; a request starts an execution, ``None`` does nothing."""


class RealtimeTrigger(Trigger):
    """A trigger that listens continuously and yields one request per event.

    Example::

        async def listen(self, ctx):
            async for message in subscribe(self.topic):
                yield ExecutionRequest(variables={"message": message})
    """

    @abc.abstractmethod
    def listen(self, ctx: RunContext) -> AsyncIterator[ExecutionRequest]:
        """Yield a request per event until cancelled."""


class WebhookRequest(Model):
    """An incoming HTTP request as a webhook trigger sees it."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


class WebhookTrigger(Trigger):
    """A trigger fired by ``POST /api/v1/executions/webhook/{namespace}/{flowId}/{key}``.

    ``key`` is the secret part of the URL; :meth:`verify` checks a provider signature
    (constant-time) and :meth:`to_request` turns the payload into an execution request.
    """

    key: str
    """The URL key; treat it like a password (use ``{{ secret('...') }}``)."""

    async def verify(self, request: WebhookRequest, ctx: RunContext) -> bool:
        """Check the request's authenticity (signature, timestamp); the default trusts the key."""
        return True

    async def to_request(self, request: WebhookRequest, ctx: RunContext) -> ExecutionRequest | None:
        """Map the request to an execution request; ``None`` ignores the delivery."""
        return ExecutionRequest(variables={"body": request.body.decode("utf-8", "replace")})
