"""The one interface every storage backend implements (SQLite embedded, PostgreSQL later).

The engine talks to persistence only through :class:`Repository`. Implementations must make
:meth:`Repository.save` atomic: the execution header and every task run passed to it are
committed together or not at all, before the engine acts on the decisions that produced them.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from plait.engine._model import Execution, FlowRevision, LogRecord, MetricRecord, TaskRun
from plait.flows import State


class Repository(abc.ABC):
    """Flows with revisions, executions with their task runs, logs and metrics."""

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to the current migration."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and release connections."""

    # -- flows -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def save_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision:
        """Store ``source`` as the next revision; an unchanged source keeps its revision."""

    @abc.abstractmethod
    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None:
        """The latest (or the given) revision of a flow, ``None`` when unknown or deleted."""

    @abc.abstractmethod
    async def list_flows(self, namespace: str | None = None) -> list[FlowRevision]:
        """The latest revision of every (not deleted) flow, optionally under ``namespace``."""

    @abc.abstractmethod
    async def flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRevision]:
        """Every revision of a flow, oldest first."""

    @abc.abstractmethod
    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        """Mark a flow deleted (its revisions stay for its executions)."""

    # -- executions --------------------------------------------------------------------------

    @abc.abstractmethod
    async def save(
        self,
        execution: Execution,
        task_runs: Sequence[TaskRun] = (),
        *,
        logs: Sequence[LogRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        also: Sequence[Execution] = (),
    ) -> None:
        """Insert or update the execution header and the given task runs, atomically.

        ``execution.task_runs`` is not written implicitly; pass the runs that changed. Logs and
        metrics given here are written in the same transaction, so a task run is never stored
        as ended without the log lines it wrote. ``also`` holds other execution headers to
        write in the same transaction (the new execution of a flow-level retry, so a failed
        execution is never stored as RETRIED without the one that retries it).
        """

    @abc.abstractmethod
    async def request_kill(self, execution_id: str) -> bool:
        """Ask for an unfinished execution to be killed (whoever drives it will); whether it
        was unfinished. Never overwritten by the driving process's own saves."""

    @abc.abstractmethod
    async def clear_kill(self, execution_id: str) -> None:
        """Forget a kill request (an execution restarted after being killed)."""

    @abc.abstractmethod
    async def kill_requested(self, execution_id: str) -> bool:
        """Whether a kill was requested for the execution."""

    @abc.abstractmethod
    async def get_execution(self, execution_id: str) -> Execution | None:
        """The execution with all its task runs (ordered by creation), or ``None``."""

    @abc.abstractmethod
    async def list_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Sequence[State] | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> list[Execution]:
        """Newest first, headers only (``task_runs`` empty); ``before_id`` pages."""

    @abc.abstractmethod
    async def unfinished_executions(self) -> list[str]:
        """Ids of executions not in a terminal state (to resume after a crash)."""

    @abc.abstractmethod
    async def count_running(self, namespace: str, flow_id: str) -> int:
        """Executions of a flow currently RUNNING, PAUSED, RETRYING or KILLING (for concurrency)."""

    @abc.abstractmethod
    async def delete_execution(self, execution_id: str) -> bool:
        """Delete an execution with its task runs, logs and metrics."""

    # -- logs and metrics --------------------------------------------------------------------

    @abc.abstractmethod
    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Store log records (already masked), assigning each its ``seq``."""

    @abc.abstractmethod
    async def logs(
        self,
        execution_id: str,
        *,
        taskrun_id: str | None = None,
        after_seq: int | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Log records of an execution in order; ``after_seq`` tails from a known point."""

    @abc.abstractmethod
    async def append_metrics(self, records: Sequence[MetricRecord]) -> None:
        """Store metric points."""

    @abc.abstractmethod
    async def metrics(self, execution_id: str) -> list[MetricRecord]:
        """Metric points of an execution in order."""

    # -- maintenance -------------------------------------------------------------------------

    @abc.abstractmethod
    async def purge(self, *, ended_before: datetime) -> int:
        """Delete terminal executions that ended before a date; the number deleted."""
