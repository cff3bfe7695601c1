"""The one interface every storage backend implements (SQLite embedded, PostgreSQL later).

The engine talks to persistence only through :class:`Repository`. Implementations must make
:meth:`Repository.save` atomic: the execution header and every task run passed to it are
committed together or not at all, before the engine acts on the decisions that produced them.

Executions have one owner at a time: a *lease* (owner id, expiry, epoch) stored with the
execution. A process takes it with :meth:`Repository.claim` (a compare-and-swap: only a lease
that is free, expired, already its own, or held by a process known to be dead is taken),
keeps it alive with :meth:`Repository.renew`, and gives it back with :meth:`Repository.release`
or with the save that ends the execution. A save made under a lease is *fenced*: it is written
only while the lease is still the one the writer holds, otherwise :class:`LeaseLost` is raised
and nothing of it is stored, so a process that lost an execution can never overwrite the new
owner's work.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from plait_sdk import UserError

from plait.flows import State
from plait.records import Execution, FlowRevision, LogRecord, MetricRecord, TaskRun

#: Exit code of the CLI when a run stopped without finishing because of the database or the
#: loss of the lease (EX_TEMPFAIL: the execution is left for ``plait executions recover``).
EXIT_UNFINISHED = 75


@dataclass(frozen=True)
class Lease:
    """The lease a save is made under.

    ``epoch`` is the value :meth:`Repository.claim` returned (1 for an execution this save
    inserts); the save is refused unless the stored lease has this owner and epoch. ``expires``
    is stored as the new expiry, or the lease is released with the save when ``release``.
    """

    owner: str
    epoch: int
    expires: datetime
    release: bool = False


@dataclass(frozen=True)
class LeaseHolder:
    """The lease as stored: ``expires`` is ``None`` when nobody holds it."""

    owner: str | None
    expires: datetime | None
    epoch: int


class LeaseLost(UserError):
    """The execution's lease is held by another process: this one must stop driving it."""

    exit_code = EXIT_UNFINISHED

    def __init__(self, execution_id: str, holder: LeaseHolder | None = None) -> None:
        by = f" by {holder.owner}" if holder is not None and holder.owner else ""
        super().__init__(
            f"execution {execution_id} was taken over{by}; this process stopped driving it "
            "and wrote nothing more"
        )
        self.execution_id = execution_id
        self.holder = holder


class LeaseHeld(UserError):
    """An execution cannot be taken: another live process drives it."""

    exit_code = EXIT_UNFINISHED

    def __init__(self, execution_id: str, holder: LeaseHolder | None) -> None:
        if holder is not None and holder.owner and holder.expires is not None:
            by = f"{holder.owner} (lease until {holder.expires:%Y-%m-%d %H:%M:%S} UTC)"
        else:
            by = "another process"
        super().__init__(f"execution {execution_id} is being driven by {by}")
        self.execution_id = execution_id
        self.holder = holder


class DatabaseFault(UserError):
    """The database failed under a step (locked too long, I/O error, disk full...).

    The CLI prints it as one line and exits with :data:`EXIT_UNFINISHED`; the execution it
    interrupted keeps its state as last committed, and ``plait executions recover`` finishes
    it once its lease is free.
    """

    exit_code = EXIT_UNFINISHED

    def __init__(self, problem: str, where: str, execution_id: str | None = None) -> None:
        self.problem = problem
        self.where = where
        self.execution_id = execution_id
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.problem}: {self.where}"
        if self.execution_id is not None:
            text += (
                f"; execution {self.execution_id} is left unfinished and "
                "`plait executions recover` will finish it"
            )
        return text

    def during(self, execution_id: str) -> DatabaseFault:
        """The same fault, naming the execution it interrupted (the innermost one is kept)."""
        if self.execution_id is None:
            self.execution_id = execution_id
            self.reason = self._text()
            self.args = (self.reason,)
        return self


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
        lease: Lease | None = None,
        removed: Sequence[str] = (),
    ) -> None:
        """Insert or update the execution header and the given task runs, atomically; delete
        the task runs whose ids are in ``removed`` (a restart drops some) in the same
        transaction.

        ``execution.task_runs`` is not written implicitly; pass the runs that changed. Logs and
        metrics given here are written in the same transaction, so a task run is never stored
        as ended without the log lines it wrote. ``also`` holds other execution headers to
        write in the same transaction (the new execution of a flow-level retry, so a failed
        execution is never stored as RETRIED without the one that retries it).

        With a ``lease`` the save is fenced: an existing execution is updated only while its
        stored lease has the lease's owner and epoch (else :class:`LeaseLost`, nothing
        written); a new one is inserted holding the lease. The expiry is renewed, or the lease
        released when ``lease.release``. ``also`` executions are new ones, inserted holding
        the lease with epoch 1. Without a lease (tools, tests) the lease columns are left as
        they are.

        An implementation may write the saves of several executions in one transaction (the
        SQL one does: group commits), but returns from each only once the transaction holding
        it has committed, and fails each on its own (a lost lease, a failing statement).
        """

    # -- leases ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(
        self,
        execution_id: str,
        owner: str,
        expires: datetime,
        *,
        now: datetime,
        dead_owner: str | None = None,
    ) -> int | None:
        """Take the execution's lease if it is free, expired (before ``now``), already
        ``owner``'s, or held by ``dead_owner``; its new epoch, or ``None`` when refused (or
        when there is no such execution). One compare-and-swap: of concurrent claims of a
        free lease exactly one succeeds."""

    @abc.abstractmethod
    async def renew(self, owner: str, execution_ids: Sequence[str], expires: datetime) -> set[str]:
        """Extend every lease ``owner`` still holds among ``execution_ids`` (one statement);
        the ids still held. An id missing from the answer was taken by another process."""

    @abc.abstractmethod
    async def release(self, execution_id: str, owner: str, epoch: int) -> None:
        """Give the lease back (only if it is still ``owner``'s at ``epoch``)."""

    @abc.abstractmethod
    async def lease(self, execution_id: str) -> LeaseHolder | None:
        """The execution's lease as stored, ``None`` when there is no such execution."""

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
    async def request_pause(self, execution_id: str) -> bool:
        """Ask for a running (or created, queued) execution to pause at its next safe point:
        no new task run starts, running ones finish, then it is PAUSED. Whether it was such
        an execution (not ended, not PAUSED, not being killed). Never overwritten by the
        driving process's own saves."""

    @abc.abstractmethod
    async def clear_pause(self, execution_id: str) -> None:
        """Forget a pause request (the execution is resumed or restarted)."""

    @abc.abstractmethod
    async def requests(self, execution_id: str) -> tuple[bool, bool]:
        """Whether a kill, and whether a pause, was requested for the execution (one read,
        for the driver's periodic check)."""

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
