"""``RunContext``: the one door from a running task (or trigger) to the hub."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MetricType = Literal["counter", "timer", "gauge"]
"""How a metric adds up: a ``counter`` is summed, a ``timer`` holds seconds, a ``gauge`` keeps
its last value.

Example::

    ctx.metric("rows", 120)  # a counter
    ctx.metric("fetch", 0.42, type="timer", tags={"host": "api"})
"""


#: The states an execution may be ended in by a task (Kestra's Exit; CANCELED as Kestra spells it).
EndState = Literal["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"]
"""The states an execution can be ended in by :class:`EndExecution` (Kestra's Exit task).

Example::

    ctx.end_execution("WARNING")  # the execution ends WARNING once this task succeeded
"""


@dataclass(frozen=True)
class SetLabels:
    """Effect: add or replace labels of the running execution.

    Example::

        ctx.set_labels({"team": "data", "customer": customer_id})
        # the same, as a typed effect:
        ctx.effect(SetLabels({"team": "data"}))
    """

    labels: Mapping[str, str]


@dataclass(frozen=True)
class SetVariables:
    """Effect: set execution variables (``vars``); maps merge into existing maps. With
    ``overwrite`` false, a name that already exists fails the task.

    Example::

        ctx.set_variables({"cursor": page.next_cursor})  # later tasks read {{ vars.cursor }}
        ctx.effect(SetVariables({"retries": 0}, overwrite=False))
    """

    variables: Mapping[str, Any]
    overwrite: bool = True


@dataclass(frozen=True)
class UnsetVariables:
    """Effect: remove execution variables (``a.b`` removes key ``b`` of map ``a``); a missing
    one fails the task unless ``ignore_missing``.

    Example::

        ctx.unset_variables(["cursor", "batch.current"], ignore_missing=True)
        ctx.effect(UnsetVariables(("cursor",)))
    """

    names: tuple[str, ...] = field(default_factory=tuple)
    ignore_missing: bool = False


@dataclass(frozen=True)
class EndExecution:
    """Effect: end the execution in ``state`` once this task succeeded (KILLED kills it now;
    otherwise what runs in other branches finishes first).

    Example::

        if not rows:
            ctx.end_execution("SUCCESS")  # nothing to do: the tasks after this one don't run
    """

    state: EndState = "SUCCESS"


#: What a task may do to its execution besides returning outputs, applied by the core when the
#: task run succeeds (in the order asked), never when it fails.
Effect = SetLabels | SetVariables | UnsetVariables | EndExecution
"""What a task may ask of its execution besides outputs, applied when its attempt succeeds.

Example::

    ctx.effect(SetLabels({"stage": "loaded"}))
    result = await harness.run(task)
    assert result.effects == [SetLabels({"stage": "loaded"})]
"""


class TaskLogger(Protocol):
    """Logs of a task run: stored with the execution, streamed live, secrets masked.

    ``%``-style arguments as in :mod:`logging`.

    Example::

        ctx.log.info("fetched %d rows from %s", len(rows), self.table)
    """

    def debug(self, msg: str, *args: object) -> None: ...
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...


class Storage(abc.ABC):
    """Internal storage of one execution: files passed between tasks, addressed by URI.

    URIs look like ``plait:///<namespace>/<flowId>/executions/<executionId>/<path>``. A URI outside
    the current execution's prefix (or its namespace's shared files) is refused.

    Example::

        uri = await ctx.storage.put("report.csv", b"a,b\\n1,2\\n")
        async for chunk in ctx.storage.open(uri):
            ...
    """

    @abc.abstractmethod
    async def put(self, name: str, data: bytes | AsyncIterable[bytes] | Path) -> str:
        """Store ``data`` under ``name`` in this task run's area and return its URI."""

    @abc.abstractmethod
    def open(self, uri: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the file at ``uri`` in chunks."""

    @abc.abstractmethod
    async def read_bytes(self, uri: str) -> bytes:
        """The whole file at ``uri`` (for small files; prefer :meth:`open`)."""

    @abc.abstractmethod
    async def download(self, uri: str, path: Path) -> Path:
        """Copy the file at ``uri`` to a local ``path`` and return it."""

    @abc.abstractmethod
    async def size(self, uri: str) -> int:
        """Size in bytes of the file at ``uri``."""

    async def delete(self, uri: str) -> bool:
        """Delete the file at ``uri`` (of this execution); whether there was one to delete.

        Optional: a storage that cannot delete raises ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot delete files")

    async def delete_execution_files(self) -> list[str]:
        """Delete every file of this execution (Kestra's PurgeCurrentExecutionFiles); the
        URIs deleted. Optional: a storage that cannot raises ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} cannot purge an execution's files")


class KeyValueStore(abc.ABC):
    """The namespaced key-value store, seen from a flow (its namespace is the default).

    Values keep their type: strings, numbers, booleans, datetimes, dates, durations and JSON.

    Example::

        await ctx.kv.set("last_run", datetime.now(UTC), ttl=timedelta(days=7))
        last = await ctx.kv.get("last_run")        # a datetime, or None
    """

    @abc.abstractmethod
    async def get(self, key: str, *, namespace: str | None = None) -> Any:
        """The value of ``key``, or ``None`` when it is missing or expired."""

    @abc.abstractmethod
    async def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: str | None = None,
        ttl: timedelta | None = None,
        type: str | None = None,
        overwrite: bool = True,
    ) -> None:
        """Store ``value`` (``type``: STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION, JSON;
        inferred when omitted); refuses to replace an existing key when ``overwrite`` is false."""

    @abc.abstractmethod
    async def delete(self, key: str, *, namespace: str | None = None) -> bool:
        """Delete ``key``; whether it existed."""

    @abc.abstractmethod
    async def keys(self, prefix: str = "", *, namespace: str | None = None) -> list[str]:
        """The live keys starting with ``prefix``, sorted."""


class NamespaceFiles(abc.ABC):
    """The namespace files (Kestra's namespace files): code and data shared by the flows of a
    namespace, seen from a flow (its namespace is the default). Added in plugin API 1.0.

    Paths are relative to the namespace's root, ``/`` separated (a leading ``/`` is accepted,
    as Kestra writes them); a path that could climb out (``..``), an absolute Windows path or a
    control character is refused with a :class:`UserError`.

    Example::

        for path in await ctx.namespace_files.list("scripts/"):
            data = await ctx.namespace_files.read(path)
        await ctx.namespace_files.write("reports/today.csv", b"a,b\n1,2\n")
    """

    @abc.abstractmethod
    async def list(self, prefix: str = "", *, namespace: str | None = None) -> list[str]:
        """The paths of the files under ``prefix`` (a directory, or ``""`` for all), sorted."""

    @abc.abstractmethod
    async def read(self, path: str, *, namespace: str | None = None) -> bytes:
        """The content of the latest version of the file; a :class:`UserError` if missing."""

    @abc.abstractmethod
    async def write(self, path: str, data: bytes, *, namespace: str | None = None) -> int:
        """Store ``data`` as a new version of the file; returns the version number (1, 2...)."""

    @abc.abstractmethod
    async def delete(self, path: str, *, namespace: str | None = None) -> bool:
        """Delete the file (every version); whether there was one."""


class RunContext(abc.ABC):
    """Everything a task may use of the hub while it runs.

    The core builds one per task-run attempt. A task never imports the core: templates,
    secrets, logs, metrics, files and cancellation all go through this object.

    Example::

        async def run(self, ctx: RunContext) -> Output:
            token = await ctx.secret("API_TOKEN")
            ctx.log.info("calling %s", self.uri)       # the token would be masked if logged
            ctx.metric("requests", 1)
            uri = await ctx.storage.put("body.json", payload)
            return MyOutput(uri=uri)
    """

    #: Identity of the run, for messages and metrics tags.
    namespace: str
    flow_id: str
    execution_id: str
    task_id: str
    taskrun_id: str
    attempt: int

    @property
    @abc.abstractmethod
    def log(self) -> TaskLogger:
        """The task run's logger (masked, stored, streamed)."""

    @property
    @abc.abstractmethod
    def storage(self) -> Storage:
        """Internal storage scoped to this execution."""

    @property
    @abc.abstractmethod
    def working_dir(self) -> Path:
        """A private temporary directory for this task run (shared inside WorkingDirectory)."""

    @abc.abstractmethod
    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render templates in ``value`` (strings, lists, dicts) with the execution's context."""

    @abc.abstractmethod
    async def secret(self, name: str) -> str:
        """The secret ``name`` seen from the flow's namespace; masked from then on."""

    @abc.abstractmethod
    def mask(self, value: str) -> None:
        """Treat ``value`` as sensitive: it is replaced by ``******`` wherever it would surface."""

    @abc.abstractmethod
    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Record a metric of this task run."""

    @property
    def kv(self) -> KeyValueStore:
        """The key-value store (flow namespace by default). Added in plugin API 1.0."""
        raise NotImplementedError("this Plait runtime has no key-value store")

    @property
    def namespace_files(self) -> NamespaceFiles:
        """The namespace files (flow namespace by default). Added in plugin API 1.0."""
        raise NotImplementedError("this Plait runtime has no namespace files")

    def now(self) -> datetime:
        """The current time (UTC, timezone-aware). Added in plugin API 1.0.

        Read the time through this rather than ``datetime.now()``: the test harness
        (:mod:`plait_sdk.testing`) gives it a fake clock, so a trigger that compares
        timestamps is testable without sleeping.

        Example::

            if ctx.now() - last_seen > timedelta(hours=1):
                ctx.log.warning("no new rows for an hour")
        """
        return datetime.now(UTC)

    def effect(self, effect: Effect) -> None:
        """Ask for an effect on the execution (applied when this task run succeeds).

        The runtime records it; prefer the helpers :meth:`set_labels`,
        :meth:`set_variables`, :meth:`unset_variables` and :meth:`end_execution`.
        """
        raise NotImplementedError("this Plait runtime applies no execution effects")

    def set_labels(self, labels: Mapping[str, Any]) -> None:
        """Add or replace labels of the execution (values turned into text).

        Example::

            ctx.set_labels({"customer": self.customer, "tier": "gold"})
        """
        self.effect(SetLabels({str(k): _label_text(v) for k, v in labels.items()}))

    def set_variables(self, variables: Mapping[str, Any], *, overwrite: bool = True) -> None:
        """Set execution variables, seen by later tasks as ``{{ vars.<name> }}``."""
        self.effect(SetVariables(dict(variables), overwrite))

    def unset_variables(self, names: list[str], *, ignore_missing: bool = False) -> None:
        """Remove execution variables."""
        self.effect(UnsetVariables(tuple(names), ignore_missing))

    def end_execution(self, state: EndState) -> None:
        """End the execution in ``state`` once this task succeeded (Kestra's Exit)."""
        self.effect(EndExecution(state))

    @property
    @abc.abstractmethod
    def cancelled(self) -> bool:
        """True once the task run was killed or timed out; long loops should stop."""

    @abc.abstractmethod
    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking callable in a worker thread so the event loop stays free."""


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
