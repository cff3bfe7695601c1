"""``SqlRepository``: the Repository on SQLAlchemy 2 Core (embedded SQLite by default).

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the process
being killed (``kill -9``), which is the durability the engine promises; a power cut may lose the
last transactions. All access goes through one connection owned by one dedicated thread: SQLite
has one writer anyway, and running SQLAlchemy Core synchronously in that thread costs one thread
hop per call (about 0.3 ms per engine save, of which 0.09 ms is SQL work; the aiosqlite bridge
hops threads for every statement, 2.2 ms per save). The event loop never blocks on the database.

Saves are group-committed: the saves of every execution that arrive while a transaction runs are
written together in the next one (one thread hop, one commit), each fenced by its own lease,
and each caller is answered only once that transaction has committed.

A database locked by another process is retried with backoff for up to
``limits().database_busy_seconds``; a lock held longer, a disk I/O error or a full disk is a
:class:`~plait.records.DatabaseFault` saying so in one line, never an internal error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from plait_sdk import UserError
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from plait.flows import TERMINAL_STATES, State
from plait.limits import limits
from plait.records import (
    DatabaseFault,
    Execution,
    FlowRevision,
    Lease,
    LeaseHolder,
    LeaseLost,
    LogRecord,
    MetricRecord,
    Repository,
    TaskRun,
    utcnow,
)
from plait.storage import _migrate
from plait.storage._prepared import Prepared, group
from plait.storage._private import prepare_sqlite
from plait.storage._tables import executions, flows, plait_changes, task_runs
from plait.storage._tables import logs as logs_table
from plait.storage._tables import metrics as metrics_table
from plait.storage._thread import DatabaseThread

_COUNTER = "SELECT version FROM plait_changes WHERE id = 1"
LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
ACTIVE_STATES = (State.RUNNING, State.PAUSED, State.RETRYING, State.KILLING)
T = TypeVar("T")

#: A fault worth retrying: the database is locked by another writer (or, on PostgreSQL, a
#: deadlock or serialization failure the transaction can simply be run again after).
LOCKED = "locked"


class FlowConflict(Exception):
    """A checked flow save found the flow other than expected: ``kind`` is ``exists`` (it
    must be new), ``missing`` (there is none to update), ``stale`` (another revision came
    first) or ``race`` (a concurrent save won)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class _Step:
    """One save waiting for the transaction that will hold it (its group commit)."""

    execution_id: str
    kind: str
    header: dict[str, Any]
    #: Written only while the stored lease is the one in ``header``.
    fenced: bool
    #: (statement kind, rows) written after the header, when it was written.
    rows: list[tuple[str, list[dict[str, Any]]]]
    #: ``True`` once committed; the lease's holder (or ``None``) when the lease was lost.
    done: asyncio.Future[Any]


def _settle(step: _Step, *, result: Any = None, error: BaseException | None = None) -> None:
    if step.done.done():  # its caller was cancelled: the write went ahead (or not) regardless
        return
    if error is not None:
        step.done.set_exception(error)
    else:
        step.done.set_result(result)


class SqlRepository(Repository):
    """Flows, executions, task runs, logs and metrics in a SQL database.

    Example::

        repo = SqlRepository.sqlite(Path(".plait/plait.db"))
        await repo.open()
        ...
        await repo.close()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._thread: DatabaseThread | None = None
        #: Saves waiting for their group commit, and the task committing them (one at a time).
        self._waiting: list[_Step] = []
        self._committer: asyncio.Task[None] | None = None
        #: SQLite: a read-only connection of the event loop's own, for :meth:`changes`.
        self._watch: sqlite3.Connection | None = None
        self._seen: tuple[int, int] | None = None  # (its data_version, plait_changes.version)

    @classmethod
    def sqlite(cls, path: Path) -> SqlRepository:
        prepare_sqlite(path)  # 0600, with its -wal/-shm/-journal (plait.storage._private)
        return cls(f"sqlite:///{path}")

    async def _run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` (one transaction) in the database thread; a locked database is retried
        with backoff for up to ``database_busy_seconds``, then, like a broken disk, it is a
        :class:`DatabaseFault`."""
        thread, conn = self._thread, self._conn
        if thread is None or conn is None:
            raise RuntimeError("the repository is not open")

        def call() -> T:
            try:
                return fn(conn)
            except BaseException:
                with contextlib.suppress(Exception):  # keep the error that made it roll back
                    conn.rollback()
                raise

        started = time.monotonic()
        delay = 0.01
        while True:
            try:
                return await thread.run(call)
            except Exception as error:
                problem = _fault(error)
                if problem is None:
                    raise
                if problem == LOCKED:
                    budget = limits().database_busy_seconds
                    left = started + budget - time.monotonic()
                    if left > 0:
                        # The database thread is free meanwhile (another call may succeed).
                        await asyncio.sleep(min(left, delay * random.uniform(0.5, 1.0)))
                        delay = min(delay * 2, 0.5)
                        continue
                    problem = f"database locked by another process for more than {budget:g} s"
                raise DatabaseFault(problem, self.where) from error

    @property
    def where(self) -> str:
        """The database as a person would name it: its file, or its URL without password."""
        if self.dialect == "sqlite":
            return self.url.split(":///", 1)[-1]
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._thread = DatabaseThread("plait-db")
        try:
            await self._thread.run(self._open_sync)
        except Exception as error:
            await self._thread.stop()
            self._thread = None
            if isinstance(error, UserError):
                raise
            raise UserError(f"cannot open the database {self.url}: {error}") from None

    def _open_sync(self) -> None:
        engine = create_engine(self.url)
        if self.dialect == "sqlite":
            synchronous = sqlite_synchronous()

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None  # SQLAlchemy drives transactions
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA foreign_keys=ON")
                # SQLite's own wait for a lock, per try; _run retries up to the whole budget.
                cursor.execute(f"PRAGMA busy_timeout={_busy_timeout_ms()}")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        self._engine = engine
        conn = engine.connect()
        self._conn = conn
        try:
            _migrate.upgrade(conn)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        path = engine.url.database
        if self.dialect == "sqlite" and path and path != ":memory:":
            watch = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Never waits for a lock (a busy read goes through the database thread instead),
            # never writes.
            watch.execute("PRAGMA busy_timeout=0")
            watch.execute("PRAGMA query_only=ON")
            self._watch = watch

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._committer is not None:  # saves still waiting for their commit
            await asyncio.wait({self._committer})

        def _close() -> None:
            # A database that failed (locked, broken disk) must not turn the fault being
            # reported into another one while closing.
            if self._watch is not None:
                with contextlib.suppress(Exception):
                    self._watch.close()
                self._watch = None
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            if self._engine is not None:
                with contextlib.suppress(Exception):
                    self._engine.dispose()
                self._engine = None

        await self._thread.run(_close)
        await self._thread.stop()
        self._thread = None

    def _upsert(
        self,
        table: Any,
        columns: list[str],
        keys: list[str],
        where: Callable[[Any], Any] | None = None,
    ) -> Any:
        # Only the dialect in use is imported (PostgreSQL's costs ~50 ms at start-up).
        dialect = importlib.import_module(
            "sqlalchemy.dialects.sqlite"
            if self.dialect == "sqlite"
            else "sqlalchemy.dialects.postgresql"
        )
        stmt = dialect.insert(table)
        updates = {c: getattr(stmt.excluded, c) for c in columns}
        condition = where(stmt.excluded) if where is not None else None
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates, where=condition)

    # -- the change counter ------------------------------------------------------------------

    async def changes(self) -> int:
        """The change counter: it moves whenever any process commits a change to the API
        tokens, the flows or a trigger's ``disabled`` (migration 0090). What was read at one
        value stays true until it moves: a cache compares it on every use.

        On SQLite this costs no trip to the database thread: ``PRAGMA data_version`` on a
        connection of the event loop's own tells whether any connection (this process's
        included) committed since the last look (it reads the WAL index, never waits: WAL
        readers do not block on writers, and its busy timeout is 0); only then is the counter
        read again, on that same connection. The two reads come in that order, so a commit
        landing between them shows as a new data_version on the next look."""
        watch = self._watch
        if watch is not None:
            try:
                seen = watch.execute("PRAGMA data_version").fetchall()[0][0]
                if self._seen is not None and self._seen[0] == seen:
                    return self._seen[1]
                version = int(watch.execute(_COUNTER).fetchall()[0][0])
                self._seen = (seen, version)
                return version
            except sqlite3.Error:
                pass  # busy (a WAL reset in progress): read it the ordinary way

        def run(conn: Connection) -> int:
            version = conn.execute(select(plait_changes.c.version)).scalar()
            conn.commit()
            return int(version or 0)

        return await self._run(run)

    # -- flows -------------------------------------------------------------------------------

    async def save_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision:
        def run(conn: Connection) -> FlowRevision:
            latest = _latest_flow(conn, namespace, flow_id, include_deleted=True)
            if latest is not None and latest.source == source and not latest.deleted:
                conn.commit()
                return latest
            revision = FlowRevision(
                namespace=namespace,
                flow_id=flow_id,
                revision=(latest.revision + 1) if latest else 1,
                source=source,
            )
            conn.execute(insert(flows).values(**revision.model_dump(by_alias=False)))
            conn.commit()
            return revision

        return await self._run(run)

    async def save_flow_checked(
        self, namespace: str, flow_id: str, source: str, expected: int | None
    ) -> tuple[FlowRevision, bool]:
        """Store ``source`` as the next revision when the latest live one is ``expected``
        (``0``: none, or deleted; ``None``: any), compared and stored in one transaction:
        the revision and whether it is new (an unchanged source keeps its revision).
        :class:`FlowConflict` when the flow is not as expected."""

        def run(conn: Connection) -> tuple[FlowRevision, bool]:
            latest = _latest_flow(conn, namespace, flow_id, include_deleted=True)
            live = latest if latest is not None and not latest.deleted else None
            uid = f"{namespace}.{flow_id}"
            if expected == 0 and live is not None:
                conn.commit()
                raise FlowConflict(
                    "exists", f"flow {uid} already exists (revision {live.revision})"
                )
            if expected not in (None, 0):
                if live is None:
                    conn.commit()
                    raise FlowConflict("missing", f"flow {uid} not found")
                if live.revision != expected:
                    conn.commit()
                    raise FlowConflict(
                        "stale",
                        f"flow {uid} is at revision {live.revision}, not {expected}: "
                        "someone else changed it; fetch it again and re-apply your change",
                    )
            if live is not None and live.source == source:
                conn.commit()
                return live, False
            revision = FlowRevision(
                namespace=namespace,
                flow_id=flow_id,
                revision=(latest.revision + 1) if latest else 1,
                source=source,
                created=utcnow(),
            )
            try:
                conn.execute(insert(flows).values(**revision.model_dump(by_alias=False)))
                conn.commit()
            except IntegrityError:
                conn.rollback()
                raise FlowConflict(
                    "race", f"flow {uid} was changed at the same time; try again"
                ) from None
            return revision, True

        return await self._run(run)

    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None:
        def run(conn: Connection) -> FlowRevision | None:
            if revision is None:
                found = _latest_flow(conn, namespace, flow_id)
            else:
                row = conn.execute(
                    select(flows).where(
                        flows.c.namespace == namespace,
                        flows.c.flow_id == flow_id,
                        flows.c.revision == revision,
                    )
                ).first()
                found = _flow(row) if row else None
            conn.commit()
            return found

        return await self._run(run)

    async def list_flows(self, namespace: str | None = None) -> list[FlowRevision]:
        latest = (
            select(flows.c.namespace, flows.c.flow_id, func.max(flows.c.revision).label("rev"))
            .group_by(flows.c.namespace, flows.c.flow_id)
            .subquery()
        )
        query = select(flows).join(
            latest,
            and_(
                flows.c.namespace == latest.c.namespace,
                flows.c.flow_id == latest.c.flow_id,
                flows.c.revision == latest.c.rev,
            ),
        )
        if namespace is not None:
            query = query.where(
                (flows.c.namespace == namespace) | flows.c.namespace.startswith(namespace + ".")
            )
        query = query.order_by(flows.c.namespace, flows.c.flow_id)

        def run(conn: Connection) -> list[FlowRevision]:
            found = [_flow(r) for r in conn.execute(query)]
            conn.commit()
            return [f for f in found if not f.deleted]

        return await self._run(run)

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRevision]:
        query = (
            select(flows)
            .where(flows.c.namespace == namespace, flows.c.flow_id == flow_id)
            .order_by(flows.c.revision)
        )

        def run(conn: Connection) -> list[FlowRevision]:
            found = [_flow(r) for r in conn.execute(query)]
            conn.commit()
            return found

        return await self._run(run)

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        def run(conn: Connection) -> bool:
            latest = _latest_flow(conn, namespace, flow_id, include_deleted=True)
            if latest is None or latest.deleted:
                conn.commit()
                return False
            values = latest.model_dump(by_alias=False)
            values.update(revision=latest.revision + 1, deleted=True, created=utcnow())
            conn.execute(insert(flows).values(**values))
            conn.commit()
            return True

        return await self._run(run)

    # -- executions --------------------------------------------------------------------------

    async def save(
        self,
        execution: Execution,
        task_runs_: Sequence[TaskRun] = (),
        *,
        logs: Sequence[LogRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        also: Sequence[Execution] = (),
        lease: Lease | None = None,
        removed: Sequence[str] = (),
    ) -> None:
        header = _execution_row(execution)
        others = [_execution_row(e) for e in also]
        if lease is not None:
            header["lease_owner"] = lease.owner
            header["lease_epoch"] = lease.epoch
            header["lease_expires"] = None if lease.release else lease.expires
            for row in others:
                row.update(lease_owner=lease.owner, lease_epoch=1, lease_expires=lease.expires)
        kind = "executions" if lease is None else "leased"
        step = _Step(
            execution_id=execution.id,
            kind=kind,
            header=header,
            fenced=lease is not None,
            rows=[
                ("task_runs", [_task_run_row(t) for t in task_runs_]),
                (kind, others),
                ("logs", _log_rows(logs)),
                ("metrics", _metric_rows(metrics)),
                ("task_runs_removed", [{"id": i} for i in removed]),
            ],
            done=asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(step)
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting(), name="plait-db-group")
        # Acknowledged only once the transaction holding the step has committed.
        written = await step.done
        if written is not True:
            raise LeaseLost(execution.id, written)

    async def _commit_waiting(self) -> None:
        """Group commits: every save waiting when the previous transaction ends goes into the
        next one. One save alone is written at once; under load, the saves that arrive while
        a transaction runs share the next (one commit, one thread hop, for all of them)."""
        batch: list[_Step] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._commit_group(batch)
        except BaseException as error:  # cancelled (the loop is closing): nothing acknowledged
            for step in [*batch, *self._waiting]:
                if step.done.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    step.done.cancel()
                else:
                    step.done.set_exception(error)
            self._waiting = []
            raise
        finally:
            self._committer = None

    async def _commit_group(self, batch: list[_Step]) -> None:
        try:
            outcome = await self._run(functools.partial(self._write_group, batch))
        except DatabaseFault as fault:
            # Nothing of the group was committed: each save gets the fault (an instance of its
            # own: the engine names the execution in it).
            for step in batch:
                own = DatabaseFault(fault.problem, fault.where)
                own.__cause__ = fault.__cause__
                _settle(step, error=own)
            return
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error=error)
                return
            # One statement failed and the whole transaction rolled back: write each save on
            # its own, so the failure reaches only the save that caused it.
            for step in batch:
                await self._commit_group([step])
            return
        for step, result in zip(batch, outcome, strict=True):
            _settle(step, result=result)

    def _write_group(self, batch: list[_Step], conn: Connection) -> list[Any]:
        """The steps of ``batch`` in one transaction (in the database thread): each header
        first, fenced by its lease when it has one; a fenced header that changed no row (the
        lease is another process's now) leaves out everything else of its step."""
        outcome: list[Any] = []
        with group(conn) as tx:
            pending: dict[tuple[str, tuple[str, ...]], tuple[Prepared, list[dict[str, Any]]]] = {}
            for step in batch:
                written = tx.one(self._prepared(step.kind, [step.header], conn), step.header)
                if step.fenced and not written:
                    outcome.append(None)  # lost: its holder is read below
                    continue
                outcome.append(True)
                for kind, rows in step.rows:
                    for row in rows:
                        key = (kind, tuple(row))
                        if key not in pending:
                            pending[key] = (self._prepared(kind, [row], conn), [])
                        pending[key][1].append(row)
            # Grouped by statement, in the steps' order (a task run's rows stay in order); the
            # execution rows above come first (task runs, logs and metrics reference them).
            for prepared, rows in pending.values():
                tx.many(prepared, rows)
        # Committed: from here on nothing may fail the group (it would be written again).
        # Who holds a lost lease only makes the error message clearer.
        for index, step in enumerate(batch):
            if outcome[index] is None:
                try:
                    outcome[index] = _lease_holder(conn, step.execution_id)
                    conn.commit()
                except Exception:
                    with contextlib.suppress(Exception):
                        conn.rollback()
        return outcome

    # -- leases ------------------------------------------------------------------------------

    async def claim(
        self,
        execution_id: str,
        owner: str,
        expires: datetime,
        *,
        now: datetime,
        dead_owner: str | None = None,
    ) -> int | None:
        free = [
            executions.c.lease_expires.is_(None),
            executions.c.lease_owner == owner,
            executions.c.lease_expires < now,
        ]
        if dead_owner is not None:
            free.append(executions.c.lease_owner == dead_owner)
        # A compare-and-swap: the row lock (PostgreSQL) or the write lock (SQLite) makes a
        # second claim see the first one's owner and expiry, and change nothing.
        take = (
            update(executions)
            .where(executions.c.id == execution_id, or_(*free))
            .values(
                lease_owner=owner, lease_expires=expires, lease_epoch=executions.c.lease_epoch + 1
            )
        )
        epoch = select(executions.c.lease_epoch).where(executions.c.id == execution_id)

        def run(conn: Connection) -> int | None:
            if conn.execute(take).rowcount != 1:
                conn.commit()
                return None
            found = conn.execute(epoch).scalar_one()
            conn.commit()
            return int(found)

        return await self._run(run)

    async def renew(self, owner: str, execution_ids: Sequence[str], expires: datetime) -> set[str]:
        ids = list(execution_ids)

        def run(conn: Connection) -> set[str]:
            kept: set[str] = set()
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                mine = (
                    executions.c.id.in_(chunk),
                    executions.c.lease_owner == owner,
                    executions.c.lease_expires.is_not(None),
                )
                conn.execute(update(executions).where(*mine).values(lease_expires=expires))
                kept.update(r[0] for r in conn.execute(select(executions.c.id).where(*mine)))
            conn.commit()
            return kept

        if not ids:
            return set()
        return await self._run(run)

    async def release(self, execution_id: str, owner: str, epoch: int) -> None:
        give_back = (
            update(executions)
            .where(
                executions.c.id == execution_id,
                executions.c.lease_owner == owner,
                executions.c.lease_epoch == epoch,
            )
            .values(lease_expires=None)
        )

        def run(conn: Connection) -> None:
            conn.execute(give_back)
            conn.commit()

        await self._run(run)

    async def lease(self, execution_id: str) -> LeaseHolder | None:
        def run(conn: Connection) -> LeaseHolder | None:
            found = _lease_holder(conn, execution_id)
            conn.commit()
            return found

        return await self._run(run)

    async def request_kill(self, execution_id: str) -> bool:
        def run(conn: Connection) -> bool:
            result = conn.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .where(executions.c.state.not_in([s.value for s in TERMINAL_STATES]))
                .values(kill_requested=True)
            )
            conn.commit()
            return bool(result.rowcount)

        return await self._run(run)

    async def clear_kill(self, execution_id: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .values(kill_requested=False)
            )
            conn.commit()

        await self._run(run)

    async def kill_requested(self, execution_id: str) -> bool:
        def run(conn: Connection) -> bool:
            row = conn.execute(
                select(executions.c.kill_requested).where(executions.c.id == execution_id)
            ).first()
            conn.commit()
            return bool(row and row[0])

        return await self._run(run)

    async def request_pause(self, execution_id: str) -> bool:
        def run(conn: Connection) -> bool:
            result = conn.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .where(executions.c.state.not_in([s.value for s in TERMINAL_STATES]))
                .where(executions.c.state != State.PAUSED.value)
                .where(executions.c.kill_requested == false())
                .values(pause_requested=True)
            )
            conn.commit()
            return bool(result.rowcount)

        return await self._run(run)

    async def clear_pause(self, execution_id: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                update(executions)
                .where(executions.c.id == execution_id)
                .values(pause_requested=False)
            )
            conn.commit()

        await self._run(run)

    async def requests(self, execution_id: str) -> tuple[bool, bool]:
        def run(conn: Connection) -> tuple[bool, bool]:
            row = conn.execute(
                select(executions.c.kill_requested, executions.c.pause_requested).where(
                    executions.c.id == execution_id
                )
            ).first()
            conn.commit()
            return (bool(row[0]), bool(row[1])) if row else (False, False)

        return await self._run(run)

    async def get_execution(self, execution_id: str) -> Execution | None:
        def run(conn: Connection) -> Execution | None:
            row = conn.execute(
                select(
                    executions.c.document,
                    executions.c.kill_requested,
                    executions.c.pause_requested,
                ).where(executions.c.id == execution_id)
            ).first()
            if row is None:
                conn.commit()
                return None
            runs = conn.execute(
                select(task_runs.c.document)
                .where(task_runs.c.execution_id == execution_id)
                .order_by(task_runs.c.id)
            ).all()
            conn.commit()
            execution = Execution.model_validate_json(row[0])
            execution.kill_requested = execution.kill_requested or bool(row[1])
            # Only the column counts: a resume clears it, whatever the document says.
            execution.pause_requested = bool(row[2])
            execution.task_runs = [TaskRun.model_validate_json(r[0]) for r in runs]
            return execution

        return await self._run(run)

    async def list_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Sequence[State] | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> list[Execution]:
        query = select(executions.c.document).order_by(executions.c.id.desc()).limit(limit)
        if namespace is not None:
            query = query.where(executions.c.namespace == namespace)
        if flow_id is not None:
            query = query.where(executions.c.flow_id == flow_id)
        if states:
            query = query.where(executions.c.state.in_([s.value for s in states]))
        if before_id is not None:
            query = query.where(executions.c.id < before_id)

        def run(conn: Connection) -> list[Execution]:
            rows = conn.execute(query).all()
            conn.commit()
            return [Execution.model_validate_json(r[0]) for r in rows]

        return await self._run(run)

    async def unfinished_executions(self) -> list[str]:
        query = (
            select(executions.c.id)
            .where(executions.c.state.not_in([s.value for s in TERMINAL_STATES]))
            .order_by(executions.c.id)
        )

        def run(conn: Connection) -> list[str]:
            found = [r[0] for r in conn.execute(query)]
            conn.commit()
            return found

        return await self._run(run)

    async def execution_ids_starting(self, prefix: str, limit: int = 20) -> list[str]:
        """The ids of executions that start with ``prefix``, at most ``limit``, in order."""
        if not prefix or not (prefix.isascii() and prefix.isalnum()):
            return []  # ids are letters and digits: nothing else can match (nor need escaping)
        query = (
            select(executions.c.id)
            .where(executions.c.id.startswith(prefix))
            .order_by(executions.c.id)
            .limit(limit)
        )

        def run(conn: Connection) -> list[str]:
            found = [r[0] for r in conn.execute(query)]
            conn.commit()
            return found

        return await self._run(run)

    async def count_running(self, namespace: str, flow_id: str) -> int:
        query = select(func.count()).where(
            executions.c.namespace == namespace,
            executions.c.flow_id == flow_id,
            executions.c.state.in_([s.value for s in ACTIVE_STATES]),
        )

        def run(conn: Connection) -> int:
            value = conn.execute(query).scalar_one()
            conn.commit()
            return int(value)

        return await self._run(run)

    async def delete_execution(self, execution_id: str) -> bool:
        def run(conn: Connection) -> bool:
            deleted = _delete_executions(conn, [execution_id])
            conn.commit()
            return deleted > 0

        return await self._run(run)

    # -- logs and metrics --------------------------------------------------------------------

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        rows = _log_rows(records)

        def run(conn: Connection) -> None:
            conn.execute(insert(logs_table), rows)
            conn.commit()

        await self._run(run)

    async def logs(
        self,
        execution_id: str,
        *,
        taskrun_id: str | None = None,
        after_seq: int | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> list[LogRecord]:
        query = (
            select(logs_table)
            .where(logs_table.c.execution_id == execution_id)
            .order_by(logs_table.c.seq)
        )
        if taskrun_id is not None:
            query = query.where(logs_table.c.taskrun_id == taskrun_id)
        if after_seq is not None:
            query = query.where(logs_table.c.seq > after_seq)
        if min_level is not None:
            floor = LEVELS.get(min_level.upper(), 0)
            query = query.where(
                logs_table.c.level.in_([n for n, v in LEVELS.items() if v >= floor])
            )
        if limit is not None:
            query = query.limit(limit)

        def run(conn: Connection) -> list[LogRecord]:
            rows = conn.execute(query).all()
            conn.commit()
            return [LogRecord.model_validate(dict(r._mapping)) for r in rows]

        return await self._run(run)

    async def append_metrics(self, records: Sequence[MetricRecord]) -> None:
        if not records:
            return
        rows = _metric_rows(records)

        def run(conn: Connection) -> None:
            conn.execute(insert(metrics_table), rows)
            conn.commit()

        await self._run(run)

    async def metrics(self, execution_id: str) -> list[MetricRecord]:
        query = (
            select(metrics_table)
            .where(metrics_table.c.execution_id == execution_id)
            .order_by(metrics_table.c.seq)
        )

        def run(conn: Connection) -> list[MetricRecord]:
            rows = conn.execute(query).all()
            conn.commit()
            return [
                MetricRecord.model_validate(
                    {
                        **{k: v for k, v in r._mapping.items() if k != "seq"},
                        "tags": json.loads(r.tags),
                    }
                )
                for r in rows
            ]

        return await self._run(run)

    # -- maintenance -------------------------------------------------------------------------

    async def purge(self, *, ended_before: datetime) -> int:
        query = select(executions.c.id).where(
            executions.c.state.in_([s.value for s in TERMINAL_STATES]),
            executions.c.updated < ended_before,
        )

        def run(conn: Connection) -> int:
            ids = [r[0] for r in conn.execute(query)]
            deleted = _delete_executions(conn, ids)
            conn.commit()
            return deleted

        return await self._run(run)

    async def insert_execution(
        self,
        execution: Execution,
        lease: Lease,
        rows: Callable[[Connection], None] | None = None,
    ) -> None:
        """Insert a new execution held under ``lease`` and, in the SAME transaction, the
        caller's own rows: ``rows(connection)`` runs first (a trigger's delivery id, its next
        date, its durable state) and may raise to write nothing at all. The one way a trigger
        starts an execution (``Runner.create(persist=...)``), so "state moved" and "execution
        exists" are committed together or not at all."""
        row = execution_row(execution, lease)

        def run(conn: Connection) -> None:
            if rows is not None:
                rows(conn)
            conn.execute(insert(executions).values(**row))
            conn.commit()

        await self._run(run)

    async def insert_executions(
        self, items: Sequence[tuple[Execution, Lease, Callable[[Connection], bool]]]
    ) -> list[bool]:
        """Many :meth:`insert_execution` in ONE transaction (a schedule tick firing thousands
        of triggers at once pays one commit, not one each). Each item's ``rows(connection)``
        runs first and returns False to skip its execution (it must then have written
        nothing: a compare-and-swap that matched no row); which ones were inserted."""
        prepared = [(execution_row(e, lease), rows) for e, lease, rows in items]

        def run(conn: Connection) -> list[bool]:
            done = [rows(conn) for _, rows in prepared]
            kept = [row for (row, _), keep in zip(prepared, done, strict=True) if keep]
            if kept:  # one executemany
                conn.execute(insert(executions), kept)
            conn.commit()
            return done

        return await self._run(run)

    async def call(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in the database thread (for stores sharing this database)."""
        return await self._run(fn)

    def _prepared(self, kind: str, rows: Sequence[dict[str, Any]], conn: Connection) -> Prepared:
        keys = tuple(rows[0])
        cache: dict[tuple[str, tuple[str, ...]], Prepared] = self.__dict__.setdefault("_pre", {})
        found = cache.get((kind, keys))
        if found is None:
            statement, table = {
                "executions": (self._upsert_executions, executions),
                "leased": (self._upsert_leased, executions),
                "task_runs": (self._upsert_task_runs, task_runs),
                "logs": (insert(logs_table), logs_table),
                "metrics": (insert(metrics_table), metrics_table),
                "task_runs_removed": (
                    delete(task_runs).where(task_runs.c.id == bindparam("id")),
                    task_runs,
                ),
            }[kind]
            found = cache[(kind, keys)] = Prepared(statement, table, keys, conn.dialect)
        return found

    @property
    def _upsert_executions(self) -> Any:
        if self.__dict__.get("_ue") is None:
            self.__dict__["_ue"] = self._upsert(
                executions, ["state", "updated", "document", "flow_revision"], ["id"]
            )
        return self.__dict__["_ue"]

    @property
    def _upsert_leased(self) -> Any:
        """The fenced upsert: an existing execution is updated (its lease renewed or released)
        only while the stored lease has the writer's owner and epoch."""
        if self.__dict__.get("_ul") is None:
            self.__dict__["_ul"] = self._upsert(
                executions,
                ["state", "updated", "document", "flow_revision", "lease_expires"],
                ["id"],
                where=lambda excluded: and_(
                    executions.c.lease_owner == excluded.lease_owner,
                    executions.c.lease_epoch == excluded.lease_epoch,
                ),
            )
        return self.__dict__["_ul"]

    @property
    def _upsert_task_runs(self) -> Any:
        if self.__dict__.get("_ut") is None:
            self.__dict__["_ut"] = self._upsert(task_runs, ["state", "document"], ["id"])
        return self.__dict__["_ut"]


#: How SQLite syncs commits to disk (docs/storage.md, Durability): NORMAL survives the process,
#: FULL (or EXTRA) also a power cut, at one fsync per transaction.
SYNCHRONOUS_VARIABLE = "PLAIT_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")


def sqlite_synchronous() -> str:
    """The ``synchronous`` mode asked for with ``PLAIT_SQLITE_SYNCHRONOUS`` (NORMAL if unset)."""
    wanted = os.environ.get(SYNCHRONOUS_VARIABLE, "NORMAL").strip().upper() or "NORMAL"
    if wanted not in SYNCHRONOUS_MODES:
        raise UserError(
            f"{SYNCHRONOUS_VARIABLE}={wanted!r} is not one of {', '.join(SYNCHRONOUS_MODES)}"
        )
    return wanted


def _busy_timeout_ms() -> int:
    """SQLite's wait for a lock on one try: a tenth of the budget, between 50 ms and 1 s."""
    return int(min(1.0, max(0.05, limits().database_busy_seconds / 10)) * 1000)


def _fault(error: BaseException) -> str | None:
    """What went wrong with the database, in a user's words (or :data:`LOCKED`); ``None``
    when the error is not a database fault (a bug, reported as such)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "") or ""
        text = str(original).lower()
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
            return LOCKED
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            return "disk full"
        if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
            return "disk I/O error"
        if name.startswith("SQLITE_READONLY") or "readonly database" in text:
            return "the database is read-only"
        if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
            return "the database file is corrupt"
        if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
            return "cannot open the database file"
        return None
    sqlstate = getattr(original, "sqlstate", None)
    if not isinstance(sqlstate, str):
        psycopg = type(original).__module__.startswith("psycopg")
        lost = isinstance(error, DBAPIError) and (
            error.connection_invalidated or "closed" in str(original).lower()
        )
        return "the connection to the database was lost" if psycopg and lost else None
    if sqlstate in ("40001", "40P01", "55P03"):  # serialization failure, deadlock, lock timeout
        return LOCKED
    if sqlstate == "53100":
        return "disk full"
    if sqlstate.startswith("53"):
        return "the database server is out of resources"
    if sqlstate.startswith(("08", "57P")):
        return "the connection to the database was lost"
    if sqlstate.startswith("58"):
        return "disk I/O error"
    return None


def _lease_holder(conn: Connection, execution_id: str) -> LeaseHolder | None:
    row = conn.execute(
        select(
            executions.c.lease_owner, executions.c.lease_expires, executions.c.lease_epoch
        ).where(executions.c.id == execution_id)
    ).first()
    if row is None:
        return None
    expires = row[1]
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # SQLite keeps the UTC time without its zone
    return LeaseHolder(owner=row[0], expires=expires, epoch=int(row[2]))


def _task_run_row(run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "execution_id": run.execution_id,
        "state": run.state.value,
        "document": run.model_dump_json(),
    }


def _log_rows(records: Sequence[LogRecord]) -> list[dict[str, Any]]:
    return [r.model_dump(by_alias=False, exclude={"seq"}) for r in records]


def _metric_rows(records: Sequence[MetricRecord]) -> list[dict[str, Any]]:
    return [{**r.model_dump(by_alias=False), "tags": json.dumps(r.tags)} for r in records]


def _flow(row: Any) -> FlowRevision:
    return FlowRevision.model_validate(dict(row._mapping))


def _latest_flow(
    conn: Connection, namespace: str, flow_id: str, *, include_deleted: bool = False
) -> FlowRevision | None:
    row = conn.execute(
        select(flows)
        .where(flows.c.namespace == namespace, flows.c.flow_id == flow_id)
        .order_by(flows.c.revision.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    found = _flow(row)
    if found.deleted and not include_deleted:
        return None
    return found


def _delete_executions(conn: Connection, ids: list[str]) -> int:
    deleted = 0
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        conn.execute(delete(logs_table).where(logs_table.c.execution_id.in_(chunk)))
        conn.execute(delete(metrics_table).where(metrics_table.c.execution_id.in_(chunk)))
        conn.execute(delete(task_runs).where(task_runs.c.execution_id.in_(chunk)))
        result = conn.execute(delete(executions).where(executions.c.id.in_(chunk)))
        deleted += result.rowcount
    return deleted


def execution_row(execution: Execution, lease: Lease | None = None) -> dict[str, Any]:
    """The ``executions`` row of an execution, held under ``lease`` when given: for a caller
    that inserts a new execution in a transaction of its own (a trigger writing its state with
    the execution it starts, see ``Runner.create(persist=...)``)."""
    row = _execution_row(execution)
    if lease is not None:
        row.update(
            lease_owner=lease.owner,
            lease_epoch=lease.epoch,
            lease_expires=None if lease.release else lease.expires,
        )
    return row


def _execution_row(execution: Execution) -> dict[str, Any]:
    created = execution.created or utcnow()
    updated = execution.history[-1].date if execution.history else created
    return {
        "id": execution.id,
        "namespace": execution.namespace,
        "flow_id": execution.flow_id,
        "flow_revision": execution.flow_revision,
        "state": execution.state.value,
        "created": created,
        "updated": updated,
        "parent_execution_id": execution.parent_execution_id,
        "document": execution.model_dump_json(exclude={"task_runs"}),
    }
