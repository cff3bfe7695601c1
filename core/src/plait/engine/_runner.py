"""The runner: drives executions with the executor, persisting every step before acting on it.

One asyncio task drives each execution: it asks the executor for a step, saves what changed
(one transaction), then starts the runnable task runs the step decided on a bounded worker pool
and waits for their reports (several reports are applied in one step, so parallel work costs one
save, not one per task). A process killed at any point leaves the repository with every decision
it acted on; :meth:`Runner.recover` resumes such executions and re-runs only the task runs that
had not finished.

An execution is driven by one runner at a time: the runner holds its lease (see
:mod:`plait.records`), taken when it creates or claims the execution, renewed by one
heartbeat task per runner (one UPDATE for all its leases, every third of
``limits().lease_seconds``) and by every save, and given back by the save that ends the
execution or when the runner stops driving it. Every save is fenced by the lease: a runner
that lost it (it stalled past the expiry and another process recovered the execution) stops
driving at once and writes nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import random
import shutil
import socket
import tempfile
import time
import traceback
import typing
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
from plait_sdk import ChildFlow, Effect, Output, SetLabels, StorageBackend, TaskFailure, UserError

from plait.blueprints import find, subflow_flow_id, subflow_source
from plait.engine import _sla as sla
from plait.engine._context import ExecutionLog, TaskRunContext
from plait.engine._executor import LOOP_VALUES, Executor, value_key
from plait.engine._files import TemplateFiles
from plait.engine._retry import next_attempt_at
from plait.engine._sealing import mark, register, reveal, seal_text
from plait.engine._templated import resolve_attempts, timeout_of
from plait.engine._workdir import WORKDIR_PROPERTIES, WorkingDirectories, collect_output_files
from plait.files import ExecutionStorage, execution_prefix
from plait.flows import (
    ConcurrencyBehavior,
    Flow,
    Input,
    InputError,
    InputType,
    State,
    TaskSpec,
    coerce_inputs,
    coerce_value,
    load_flow,
)
from plait.kv import KVStore, ScopedKV, plain_value
from plait.limits import limits
from plait.nsfiles import NamespaceFileStore, ScopedNamespaceFiles
from plait.plugins import PluginHost, installed, requirement_problems, version_problem
from plait.records import (
    DatabaseFault,
    Execution,
    Lease,
    LeaseHeld,
    LeaseLost,
    LogRecord,
    MetricRecord,
    Repository,
    TaskRun,
    new_id,
    utcnow,
)
from plait.runtime import configured_engine
from plait.secrets import KeyRing, Masker, MasterKey, Sealed
from plait.templating import SecretText, TemplateError, format_duration, holds_secret, tracking

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], Any]
#: Called after each secret read: (execution id, task id, namespace, name), never the value.
SecretAudit = Callable[[str, str | None, str, str], Awaitable[None]]

#: How a sealed SECRET input is stored in an execution's inputs.
SEALED, SEALED_KEY = "$sealed", "$key"

#: The run id of an event that only wakes an execution's loop (after a kill request).
WAKE = ""


#: Starts a coroutine in a task of its own, named (a server's background task starter).
Spawn = Callable[[Coroutine[Any, Any, "Execution | None"], str], "asyncio.Task[Execution | None]"]


@dataclass
class _Event:
    run_id: str
    outputs: dict[str, Any] | None = None
    error: str | None = None
    killed: bool = False
    child: Execution | None = None
    child_error: str | None = None
    #: What the task asked of its execution (plait_sdk.Effect), applied if it succeeded.
    effects: list[Effect] = field(default_factory=list)
    #: A fault of the database under a followed subflow: it stops the parent too (it is not
    #: the subflow failing).
    fault: DatabaseFault | None = None


@dataclass
class _Hold:
    """This runner's lease on one execution."""

    epoch: int
    #: Written to the database: a new execution's lease exists once its first save commits.
    stored: bool = True
    #: False once given back (the execution ended, or waits out a timed pause meanwhile).
    active: bool = True
    #: Taken by another process: stop driving, write nothing more.
    lost: bool = False
    #: Called when the heartbeat finds the lease lost (cancels the execution's work).
    on_lost: Callable[[], None] | None = None


@dataclass
class Recovery:
    """What :meth:`Runner.recover_unfinished` did."""

    recovered: list[Execution] = field(default_factory=list)
    #: Executions left alone: another live process drives them (their lease is held).
    skipped: list[LeaseHeld | LeaseLost] = field(default_factory=list)
    #: With a ``spawn``: the recoveries started, each ending with the execution (or ``None``
    #: when another driver had it).
    started: list[asyncio.Task[Execution | None]] = field(default_factory=list)


@dataclass
class _Driving:
    executor: Executor
    masker: Masker
    log: ExecutionLog
    events: asyncio.Queue[_Event] = field(default_factory=asyncio.Queue)
    workers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    contexts: dict[str, TaskRunContext] = field(default_factory=dict)
    children: dict[str, asyncio.Task[Execution]] = field(default_factory=dict)
    metrics: list[MetricRecord] = field(default_factory=list)
    workdirs: dict[str, Path] = field(default_factory=dict)
    killing: bool = False
    kill_checked: float = field(default_factory=time.monotonic)
    #: Task runs changed by steps not yet committed (pure tasks run inline).
    unsaved: dict[str, TaskRun] = field(default_factory=dict)
    #: The execution that retries this one (flow-level CREATE_NEW_EXECUTION), once decided.
    successor: Execution | None = None
    #: Another process resumed the execution while this one waited out a timed pause.
    handed_over: bool = False
    #: The engine's template functions of this execution (made on its first render).
    functions: dict[str, Callable[..., Any]] | None = None
    #: Claimed back after a timed pause, another process had written it meanwhile: drive the
    #: stored copy instead of this one.
    reload: bool = False


class Runner:
    """Runs flows durably against a repository and an internal-storage backend."""

    def __init__(
        self,
        repo: Repository,
        host: PluginHost,
        storage: StorageBackend,
        *,
        workers: int = 64,
        secrets: SecretLookup | None = None,
        on_log: Callable[[LogRecord], None] | None = None,
        on_step: Callable[[Execution], None] | None = None,
        on_secret_read: SecretAudit | None = None,
        kv: KVStore | None = None,
        namespace_files: NamespaceFileStore | None = None,
        key_ring: KeyRing | None = None,
        poll_interval: float = 1.0,
        rng_seed: int | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.host = host
        self.storage = storage
        self.templates = configured_engine(host)
        self._slots = asyncio.Semaphore(workers)
        self._secrets = secrets
        self._on_log = on_log
        self._on_step = on_step
        self._on_secret_read = on_secret_read
        self.kv = kv
        self.namespace_files = namespace_files
        self._workdir_setup = WorkingDirectories(storage, asyncio.to_thread, namespace_files)
        # SECRET inputs are sealed before they are stored; without a configured ring the key
        # lives only in this process (recovering such an execution elsewhere fails clearly).
        self.key_ring = key_ring or KeyRing([MasterKey.generate()])
        self._poll = poll_interval
        self._rng_seed = rng_seed
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self._driving: dict[str, _Driving] = {}
        #: This runner's id in execution leases (unique per runner: host, pid, random).
        self.owner = owner or owner_id()
        #: The clock leases are taken and expire by (tests move it).
        self._clock = clock
        self._held: dict[str, _Hold] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        #: The database failed under this runner: leases are left to expire, not given back.
        self._faulted = False
        self._claiming: set[str] = set()
        self._detached: set[asyncio.Task[Execution]] = set()

    # -- leases ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the lease heartbeat. Leases still held then expire (or are taken from this
        process by recovery once it has exited)."""
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _expiry(self) -> datetime:
        return self._clock() + timedelta(seconds=limits().lease_seconds)

    def _hold_new(self, execution_id: str) -> _Hold:
        """The lease of an execution this runner is about to insert (it exists once stored)."""
        hold = self._held[execution_id] = _Hold(epoch=1, stored=False)
        self._ensure_heartbeat()
        return hold

    async def _claim(self, execution_id: str) -> bool:
        """Take the execution's lease: free, expired, or held by a process of this host that
        has exited. ``False`` when another live process (or this runner) holds it."""
        if execution_id in self._held or execution_id in self._claiming:
            return False  # this runner drives it already
        self._claiming.add(execution_id)
        try:
            epoch = await self.repo.claim(
                execution_id, self.owner, self._expiry(), now=self._clock()
            )
            if epoch is None:
                holder = await self.repo.lease(execution_id)
                dead = holder.owner if holder is not None and holder.expires else None
                if dead is not None and await asyncio.to_thread(owner_is_dead, dead):
                    epoch = await self.repo.claim(
                        execution_id,
                        self.owner,
                        self._expiry(),
                        now=self._clock(),
                        dead_owner=dead,
                    )
            if epoch is None:
                return False
            self._held[execution_id] = _Hold(epoch)
            self._ensure_heartbeat()
            return True
        finally:
            self._claiming.discard(execution_id)

    async def _take(self, execution_id: str) -> None:
        """Claim the execution, or say who drives it (:class:`LeaseHeld`)."""
        if await self._claim(execution_id):
            return
        holder = await self.repo.lease(execution_id)
        if holder is None:
            raise UserError(f"no execution with id {execution_id}")
        raise LeaseHeld(execution_id, holder)

    async def _release(self, execution_id: str) -> None:
        hold = self._held.pop(execution_id, None)
        if hold is None or not hold.active or hold.lost or not hold.stored or self._faulted:
            return
        hold.active = False
        await self.repo.release(execution_id, self.owner, hold.epoch)

    async def _let_go(self, execution_id: str, error: BaseException | None = None) -> None:
        """Stop holding an execution after an error: its lease is given back at once, unless
        the database failed (it then expires) or it was lost."""
        if isinstance(error, DatabaseFault):
            self._faulted = True
        try:
            await self._release(execution_id)
        except Exception as failure:
            log.debug("could not give back the lease of %s: %s", execution_id, failure)

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="plait-lease-heartbeat")

    async def _beat(self) -> None:
        """Renew every lease this runner holds, in one statement, every third of the lease;
        a lease found taken stops the work on its execution at once."""
        while self._held:
            await asyncio.sleep(limits().lease_seconds / 3)
            held = {
                i: (h, h.epoch)
                for i, h in self._held.items()
                if h.active and h.stored and not h.lost
            }
            if not held:
                continue
            try:
                kept = await self.repo.renew(self.owner, list(held), self._expiry())
            except Exception as error:  # the database failed: saves say so; try again later
                log.debug("renewing leases failed: %s", error)
                continue
            for execution_id, (hold, epoch) in held.items():
                current = self._held.get(execution_id) is hold and hold.epoch == epoch
                if execution_id not in kept and current and hold.active:
                    hold.lost = True
                    if hold.on_lost is not None:
                        hold.on_lost()

    async def _save(
        self,
        execution: Execution,
        changed: Sequence[TaskRun] = (),
        *,
        logs: Sequence[LogRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        also: Sequence[Execution] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """Every write of an execution by this runner: fenced by its lease, which is renewed,
        or given back when the execution has ended. ``also`` are new executions this runner
        then holds (a flow-level retry's next try); ``removed`` are ids of task runs deleted
        (a restart's)."""
        hold = self._held.get(execution.id)
        if hold is None or not hold.active:
            raise RuntimeError(f"execution {execution.id} saved without holding its lease")
        if hold.lost:
            raise LeaseLost(execution.id)
        release = execution.state.terminal
        new = {e.id: self._hold_new(e.id) for e in also if e.id not in self._held}
        lease = Lease(self.owner, hold.epoch, self._expiry(), release)
        try:
            await self.repo.save(
                execution,
                changed,
                logs=logs,
                metrics=metrics,
                also=also,
                lease=lease,
                removed=removed,
            )
        except BaseException as error:
            for other_id in new:
                self._held.pop(other_id, None)
            if isinstance(error, LeaseLost):
                hold.lost = True
            elif isinstance(error, DatabaseFault):
                self._faulted = True
            raise
        hold.stored = True
        for other in new.values():
            other.stored = True
        if release:
            hold.active = False
            if self._held.get(execution.id) is hold:
                del self._held[execution.id]

    # -- flows -----------------------------------------------------------------------------------

    async def deploy(self, source: str, *, file: str | None = None) -> tuple[Flow, int]:
        """Validate and store a flow's source as its next revision."""
        flow = load_flow(source, registry=self.host.registry, file=file, templates=self.templates)
        revision = await self.repo.save_flow(flow.namespace, flow.id, source)
        self._flows[(flow.namespace, flow.id, revision.revision)] = flow
        return flow, revision.revision

    async def flow_of(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow:
        if revision is not None and (namespace, flow_id, revision) in self._flows:
            return self._flows[(namespace, flow_id, revision)]
        stored = await self.repo.get_flow(namespace, flow_id, revision)
        if stored is None:
            raise UserError(
                f"flow {namespace}.{flow_id} not found"
                + (f" at revision {revision}" if revision else "")
            )
        key = (namespace, flow_id, stored.revision)
        if key not in self._flows:
            self._flows[key] = load_flow(
                stored.source,
                registry=self.host.registry,
                templates=self.templates,
                file=f"{namespace}.{flow_id}@{stored.revision}",
            )
        return self._flows[key]

    # -- creating executions ---------------------------------------------------------------------

    async def create(
        self,
        flow: Flow,
        revision: int,
        inputs: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        trigger: dict[str, Any] | None = None,
        parent: tuple[str, str] | None = None,
        masker: Masker | None = None,
        subflow_depth: int = 0,
        execution_id: str | None = None,
        persist: Callable[[Execution, Lease], Awaitable[None]] | None = None,
    ) -> Execution:
        """A new execution (inputs coerced and validated), persisted as CREATED and held by
        this runner (its lease taken) for :meth:`drive`.

        ``masker`` (a parent's, for a subflow) names the secrets whose holders are sealed
        like SECRET inputs, whatever the input's type. ``execution_id`` is for a caller that
        stored files under the execution's storage prefix before creating it (the server's
        FILE inputs); by default a new id. ``persist`` replaces the plain save for a caller
        that writes its own state in the same transaction (a webhook's delivery id, a
        schedule's next date): it must insert the execution's row with the :class:`Lease` it
        is given (``plait.storage.execution_row``), so that this runner holds it.
        """
        if flow.disabled:
            raise UserError(f"flow {flow.uid} is disabled")
        coerced = coerce_inputs(flow, inputs or {})
        sensitive = {
            name
            for name, value in (inputs or {}).items()
            if isinstance(value, SecretText)
            or (masker is not None and isinstance(value, str) and masker.contains(value))
        }
        execution = Execution(
            **({"id": execution_id} if execution_id else {}),
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=revision,
            labels={**flow.labels, **(labels or {})},
            trigger=trigger,
            parent_execution_id=parent[0] if parent else None,
            parent_taskrun_id=parent[1] if parent else None,
            subflow_depth=subflow_depth,
        )
        execution.inputs = self._seal_inputs(flow, execution.id, coerced, sensitive)
        execution.transition(State.CREATED)
        if persist is None:
            await self._save_new(execution)
        else:
            hold = self._hold_new(execution.id)
            try:
                await persist(execution, Lease(self.owner, hold.epoch, self._expiry()))
            except BaseException:
                self._held.pop(execution.id, None)
                raise
            hold.stored = True
        return execution

    async def _save_new(self, execution: Execution, runs: Sequence[TaskRun] = ()) -> None:
        self._hold_new(execution.id)
        try:
            await self._save(execution, runs)
        except BaseException:
            self._held.pop(execution.id, None)
            raise

    async def run(
        self, flow: Flow, revision: int, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Execution:
        """Create an execution and drive it until it ends or pauses."""
        execution = await self.create(flow, revision, inputs, **kwargs)
        return await self.drive(flow, execution)

    # -- SECRET inputs ---------------------------------------------------------------------------

    def _seal_inputs(
        self,
        flow: Flow,
        execution_id: str,
        inputs: dict[str, Any],
        sensitive: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """The inputs as stored: SECRET values (and ``sensitive`` ones) encrypted, bound to
        this execution."""
        sealed = dict(inputs)
        for spec in flow.inputs:
            value = inputs.get(spec.id)
            secret = spec.type is InputType.SECRET or spec.id in sensitive
            if secret and isinstance(value, str):
                box = self.key_ring.seal(f"execution.{execution_id}", spec.id, value.encode())
                sealed[spec.id] = {
                    SEALED: base64.b64encode(box.blob).decode("ascii"),
                    SEALED_KEY: box.key_id,
                }
        return sealed

    def _again(self, flow: Flow, original: Execution, **fields: Any) -> Execution:
        """A new execution of ``original``'s flow revision with its labels, trigger and inputs
        (SECRET inputs re-sealed for the new id): a replay, or a flow-level retry."""
        again = Execution(
            namespace=original.namespace,
            flow_id=original.flow_id,
            flow_revision=original.flow_revision,
            labels=dict(original.labels),
            trigger=original.trigger,
            **fields,
        )
        opened = self._open_inputs(flow, original)
        sensitive = {name for name, value in opened.items() if isinstance(value, SecretText)}
        again.inputs = self._seal_inputs(flow, again.id, opened, sensitive)
        return again

    def _open_inputs(self, flow: Flow, execution: Execution) -> dict[str, Any]:
        """The inputs as templates see them: SECRET values decrypted (in memory only), marked
        sensitive so what a template derives from them is masked and sealed in turn."""
        opened = dict(execution.inputs)
        for name, value in execution.inputs.items():
            if isinstance(value, dict) and set(value) == {SEALED, SEALED_KEY}:
                box = Sealed(value[SEALED_KEY], base64.b64decode(value[SEALED]))
                text = self.key_ring.open(f"execution.{execution.id}", name, box).decode()
                opened[name] = seal_text(self.key_ring, text)
        return opened

    # -- driving ---------------------------------------------------------------------------------

    async def drive(self, flow: Flow, execution: Execution) -> Execution:
        """Advance ``execution`` until it ends, or pauses with nothing left running.

        The runner must hold the execution's lease (:meth:`create` takes it, and so do
        resume, restart, recover...); it is given back when the drive stops. A flow-level
        ``CREATE_NEW_EXECUTION`` retry is followed: what is returned is the last execution of
        the chain (the failed ones end RETRIED, each naming its successor).

        Raises :class:`LeaseLost` when another process took the execution over (this one then
        wrote nothing more), and :class:`DatabaseFault` naming the execution when the database
        failed under it (it is left for ``plait executions recover``).
        """
        while True:
            hold = self._hold_of(execution.id)
            try:
                d = await self._drive(flow, execution, hold)
            except LeaseLost:
                self._held.pop(execution.id, None)
                raise
            except DatabaseFault as fault:
                self._faulted = True
                self._held.pop(execution.id, None)  # not renewed any more: it expires
                raise fault.during(execution.id) from fault.__cause__
            except BaseException as error:
                await self._let_go(execution.id, error)
                raise
            if d is not None and d.reload:
                # Claimed back after a timed pause that another process had written meanwhile.
                stored = await self._load(execution.id)
                if stored.state.terminal:
                    await self._release(execution.id)
                    return stored
                execution = stored
                continue
            if self._held.get(execution.id) is hold and not hold.active:
                del self._held[execution.id]  # handed over while waiting out a timed pause
            elif self._held.get(execution.id) is hold:
                await self._release(execution.id)
                if execution.state is State.PAUSED:
                    settled = await self._settle_subflow_waits(execution)
                    if settled is not None:
                        return settled
            if d is None:
                return execution
            if d.successor is not None:
                execution = d.successor
                continue
            if d.handed_over:
                return await self._load(execution.id)
            return execution

    def _hold_of(self, execution_id: str) -> _Hold:
        hold = self._held.get(execution_id)
        if hold is None or not hold.active:
            raise RuntimeError(f"execution {execution_id} driven without holding its lease")
        return hold

    async def _drive(self, flow: Flow, execution: Execution, hold: _Hold) -> _Driving | None:
        scheduled = execution.state is State.CREATED and execution.scheduled is not None
        if scheduled and not await self._wait_for_schedule(execution, hold):
            return None
        admission = execution.state is State.CREATED and flow.concurrency is not None
        if admission and not await self._admit(flow, execution, hold):
            return None
        masker = Masker()
        inputs = self._open_inputs(flow, execution)
        # What this execution holds sealed (SECRET inputs, outputs of tasks before a restart or
        # a crash) is masked wherever it surfaces.
        register(masker, inputs)
        register(masker, execution.outputs)
        for run in execution.task_runs:
            register(masker, run.outputs)
            register(masker, run.value)
            register(masker, run.scratch)
        if execution.variables is not None:
            register(masker, execution.variables)
        driving = _Driving(
            executor=Executor(
                flow,
                execution,
                inputs=inputs,
                render=self._render_for(execution, masker),
                rng=random.Random(self._rng_seed),
            ),
            masker=masker,
            log=ExecutionLog(masker, self._on_log),
        )
        driving.executor.closing = functools.partial(self._close_workdir, flow, execution, driving)
        self._driving[execution.id] = driving
        hold.on_lost = functools.partial(self._on_lost, driving)
        self._reattach_subflows(execution, driving)
        started = execution.scheduled or execution.created or utcnow()
        deadline = started + flow.timeout if flow.timeout else None
        try:
            await self._loop(flow, execution, driving, deadline, hold)
            parent = execution.parent_execution_id
            reports = execution.state.terminal and execution.state is not State.RETRIED
            if parent and reports and parent not in self._driving:
                # Nobody here waits for this child (it was resumed or recovered on its own):
                # report to the parent, which may be paused waiting for it.
                await self._notify_parent(execution)
        finally:
            hold.on_lost = None
            self._driving.pop(execution.id, None)
            for task in driving.workers.values():
                task.cancel()
            driving.log.close_all()
            if driving.log.pending:
                # Summaries of dropped lines of task runs left open (a pause, a crash): stored
                # now, so no line is ever dropped without a marker.
                try:
                    await self.repo.append_logs(driving.log.take())
                except Exception as error:  # the store failing must not hide why we stopped
                    log.warning("could not store the last log lines: %s", error)
            try:  # WorkingDirectory caches of the runs that succeeded
                runs = driving.executor.runs
                await self._workdir_setup.finish(
                    execution.id, lambda rid: rid in runs and runs[rid].state is State.SUCCESS
                )
            except (UserError, OSError) as error:
                log.warning("could not save a WorkingDirectory cache: %s", error)
            if driving.workdirs:
                paths = list(driving.workdirs.values())
                await asyncio.to_thread(_remove_dirs, paths)
        return driving

    def _on_lost(self, d: _Driving) -> None:
        """Another process took the execution: stop its work now (its loop then stops)."""
        for run_id, task in d.workers.items():
            context = d.contexts.get(run_id)
            if context is not None:
                context.cancel()
            task.cancel()
        d.events.put_nowait(_Event(WAKE))

    async def _settle_subflow_waits(self, execution: Execution) -> Execution | None:
        """After giving back a paused execution: a subflow it waits for may have ended while
        this runner held it (its process could not take the lease to report back); report
        it now. The parent's driven state when one was reported."""
        for run in execution.task_runs:
            child_id = run.scratch.get("child")
            if run.state is not State.PAUSED or not child_id:
                continue
            child = await self.repo.get_execution(child_id)
            while child is not None and child.state is State.RETRIED and child.retried_by:
                child = await self.repo.get_execution(child.retried_by)
            if child is not None and child.state.terminal:
                return await self._notify_parent(self._reveal(child))
        return None

    async def _wait_for_schedule(self, execution: Execution, hold: _Hold) -> bool:
        """Wait until a scheduled execution may start; ``False`` when it was killed meanwhile.

        Nothing is held while waiting but this coroutine: if the process stops, recovery
        finds the execution CREATED with its schedule and waits again.
        """
        assert execution.scheduled is not None
        while True:
            if hold.lost:
                raise LeaseLost(execution.id)
            if await self.repo.kill_requested(execution.id):
                execution.kill_requested = True
                execution.error = "killed before its scheduled start"
                execution.transition(State.KILLED)
                await self._save(execution)
                return False
            remaining = (execution.scheduled - utcnow()).total_seconds()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, self._poll))

    async def _loop(
        self,
        flow: Flow,
        execution: Execution,
        d: _Driving,
        deadline: datetime | None,
        hold: _Hold,
    ) -> None:
        executor = d.executor
        while True:
            if hold.lost:
                raise LeaseLost(execution.id)
            now = utcnow()
            if deadline is not None and now >= deadline and not execution.kill_requested:
                execution.error = (
                    f"execution timed out after {format_duration(flow.timeout or timedelta())}"
                )
                executor.request_kill()
            if flow.sla:
                self._log_sla(d, execution, sla.due(flow, execution, now))
            step = await executor.step(now)
            for run in step.changed:
                # Failures the executor decided (a flowable's template, a runIf) have no worker
                # to log them; workers log their own.
                if run.state is State.FAILED and run.error and not run.attempts:
                    d.log.add(
                        LogRecord(
                            execution_id=run.execution_id,
                            taskrun_id=run.id,
                            task_id=run.task_id,
                            level="ERROR",
                            message=run.error,
                        )
                    )
            if execution.state.terminal:
                if flow.sla:
                    render = functools.partial(
                        self._render_for(execution, d.masker), executor.context_for(None)
                    )
                    self._log_sla(d, execution, await sla.assert_ended(flow, execution, render))
                await self._finalize(flow, execution, d)
            for run in step.changed:
                d.unsaved[run.id] = run
            inline = [r for r in step.start if self._inline(d, r)]
            if inline and len(inline) == len(step.start) and not step.subflows and not step.cancel:
                # Only pure tasks to start: run them now and commit their results with the next
                # durable step (a crash before then re-runs them, which is harmless).
                for run in inline:
                    await self._work(flow, execution, d, run)
                while not d.events.empty():
                    self._apply(execution, d, d.events.get_nowait())
                continue
            await self._persist(execution, list(d.unsaved.values()), d)
            d.unsaved.clear()
            if self._on_step is not None:
                self._on_step(execution)
            if execution.kill_requested and not d.killing:
                d.killing = True  # cancel once: a task cleaning up must not be re-cancelled
                self._cancel_all(d)
            for run in step.cancel:  # under a flowable task that timed out
                worker = d.workers.get(run.id)
                if worker is not None:
                    context = d.contexts.get(run.id)
                    if context is not None:
                        context.cancel()
                    worker.cancel()
            for run in step.start:
                d.workers[run.id] = asyncio.create_task(self._work(flow, execution, d, run))
            for run in step.subflows:
                await self._start_subflow(flow, execution, d, run)
            if step.subflows:
                continue
            if execution.state.terminal:
                return
            idle = not d.workers and not d.children
            breach = sla.next_deadline(flow, execution) if flow.sla else None
            if breach is not None and execution.kill_requested:
                breach = None
            if execution.state is State.PAUSED and idle and step.wake_at is None and not breach:
                return  # waits for a resume; a timed pause (wake_at) is waited for here
            wake = step.wake_at
            if deadline is not None and not execution.kill_requested:
                wake = deadline if wake is None else min(wake, deadline)
            if breach is not None:
                wake = breach if wake is None else min(wake, breach)
            if execution.state is State.PAUSED and idle and wake is not None:
                outcome = await self._wait_released(execution, d, hold, wake)
                if outcome == "handed":
                    d.handed_over = True
                    return
                if outcome == "reload":
                    d.reload = True
                    return
                continue
            timeout = self._poll
            if wake is not None:
                timeout = min(timeout, (wake - utcnow()).total_seconds())
            if not d.events.empty():
                event = d.events.get_nowait()
            elif timeout <= 0:
                # Due now: step again (a zero wait_for would cancel the get before it ran).
                await asyncio.sleep(0)
                continue
            else:
                try:
                    event = await asyncio.wait_for(d.events.get(), timeout)
                except TimeoutError:
                    await self._check_remote(execution, executor)
                    continue
            self._apply(execution, d, event)
            while not d.events.empty():
                self._apply(execution, d, d.events.get_nowait())
            if time.monotonic() - d.kill_checked >= self._poll:
                # Busy executions never time out on the event wait: check here too.
                d.kill_checked = time.monotonic()
                await self._check_remote(execution, executor)

    async def _wait_released(
        self, execution: Execution, d: _Driving, hold: _Hold, wake: datetime
    ) -> str | None:
        """Wait out a timed pause with nothing running, the lease given back meanwhile: another
        process may resume or kill the execution (and then drives it). Claimed back when the
        time comes (or on a local resume or a kill request): ``"handed"`` when another process
        holds it now, ``"reload"`` when one wrote it meanwhile, ``None`` to carry on."""
        await self.repo.release(execution.id, self.owner, hold.epoch)
        hold.active = False
        while True:
            timeout = min(self._poll, (wake - utcnow()).total_seconds())
            if timeout <= 0:
                break
            try:
                event = await asyncio.wait_for(d.events.get(), timeout)
            except TimeoutError:
                await self._check_remote(execution, d.executor)
                if execution.kill_requested:
                    break
                if await self._resumed_elsewhere(execution, d.executor):
                    return "handed"  # another process resumed it and drives it now
                continue
            self._apply(execution, d, event)
            while not d.events.empty():
                self._apply(execution, d, d.events.get_nowait())
            break
        epoch = await self.repo.claim(execution.id, self.owner, self._expiry(), now=self._clock())
        if epoch is None:
            return "handed"
        stale = epoch != hold.epoch + 1
        hold.epoch = epoch
        hold.active = True
        return "reload" if stale else None

    def _inline(self, d: _Driving, run: TaskRun) -> bool:
        spec = d.executor.spec_of(run)
        info = spec.type_info
        if info is None or not info.cls.pure:
            return False
        # A retry or timeout needs the durable path (its schedule and cancellation).
        return (
            spec.timeout is None
            and d.executor.retry_of(spec) is None
            and not d.executor.execution.kill_requested
        )

    def _apply(self, execution: Execution, d: _Driving, event: _Event) -> None:
        if event.fault is not None:
            raise event.fault
        if event.run_id == WAKE:
            return
        now = utcnow()
        d.workers.pop(event.run_id, None)
        d.contexts.pop(event.run_id, None)
        if event.child_error is not None:
            d.children.pop(event.run_id, None)
            d.executor.complete_subflow(
                event.run_id, child_id="", state=State.FAILED, outputs={}, now=now
            )
            d.executor.runs[event.run_id].error = f"subflow: {event.child_error}"
            return
        if event.child is not None:
            d.children.pop(event.run_id, None)
            d.executor.complete_subflow(
                event.run_id,
                child_id=event.child.id,
                state=event.child.state,
                outputs=event.child.outputs,
                now=now,
            )
            return
        # Labels are shown and indexed in clear: a secret in one is masked, not sealed.
        effects = [
            SetLabels(d.masker.mask_value(dict(e.labels))) if isinstance(e, SetLabels) else e
            for e in event.effects
        ]
        d.executor.complete(
            event.run_id,
            now=now,
            outputs=event.outputs,
            error=event.error,
            killed=event.killed,
            effects=effects,
        )

    @staticmethod
    def _log_sla(d: _Driving, execution: Execution, warnings: list[str]) -> None:
        for message in warnings:
            d.log.add(
                LogRecord(execution_id=execution.id, level="WARN", message=d.masker.mask(message))
            )

    async def _persist(self, execution: Execution, changed: list[TaskRun], d: _Driving) -> None:
        # One transaction: a task run is never stored as ended without its logs and metrics,
        # nor an execution as RETRIED without the execution that retries it.
        metrics = list(d.metrics)
        d.metrics.clear()  # the list is shared with the task contexts: empty it in place
        if d.masker:
            # What the executor rendered itself (ForEach values, a Switch's value, scratch) and
            # SetVariables' variables: kept intact for later tasks, sealed at rest like outputs.
            ring = self.key_ring
            for run in changed:
                run.value = mark(ring, d.masker, run.value)
                run.scratch = mark(ring, d.masker, run.scratch)
                run.outputs = mark(ring, d.masker, run.outputs)
            if execution.variables is not None:
                execution.variables = mark(ring, d.masker, execution.variables)
        for run in changed:
            if run.state.terminal:
                d.log.close_run(run.id)  # a summary of the lines past the log limits
        also = [d.successor] if d.successor is not None else []
        await self._save(execution, changed, logs=d.log.take(), metrics=metrics, also=also)

    def _parent_outputs_mapping(self, execution: Execution) -> dict[str, Any] | None:
        """The older ``outputs`` mapping of the Subflow task that started ``execution``
        (Kestra before 0.15), when its parent is driven here."""
        parent = self._driving.get(execution.parent_execution_id or "")
        if parent is None or execution.parent_taskrun_id is None:
            return None
        run = parent.executor.runs.get(execution.parent_taskrun_id)
        model = parent.executor.specs[run.task_id].flowable if run is not None else None
        child = model.child_flow() if model is not None else None
        return child.outputs if child is not None else None

    async def _finalize(self, flow: Flow, execution: Execution, d: _Driving) -> None:
        succeeded = execution.state in (State.SUCCESS, State.WARNING)
        mapping = None if flow.outputs or not succeeded else self._parent_outputs_mapping(execution)
        if mapping:
            render = self._render_for(execution, d.masker)
            try:
                legacy = await render(d.executor.context_for(None), mapping)
            except (TemplateError, UserError) as error:
                execution.error = f"the Subflow task's outputs: {error}"
                execution.transition(State.FAILED)
            else:
                execution.outputs = mark(self.key_ring, d.masker, plain_value(legacy))
        if execution.state in (State.SUCCESS, State.WARNING) and flow.outputs:
            context = d.executor.context_for(None)
            outputs: dict[str, Any] = {}
            render = self._render_for(execution, d.masker)
            try:
                for out in flow.outputs:
                    text = out.type is InputType.STRING
                    value = await render(context, out.value, text)
                    if not text and out.type is not InputType.ARRAY:
                        try:
                            value = coerce_value(Input(id=out.id, type=out.type), value)
                        except InputError as error:
                            raise UserError(f"output '{out.id}': {error}") from None
                    outputs[out.id] = plain_value(value)
            except (TemplateError, UserError) as error:
                execution.error = f"flow outputs: {error}"
                execution.transition(State.FAILED)
            execution.outputs = mark(self.key_ring, d.masker, outputs)
        if execution.state.failed and execution.error is None:
            failed = [r for r in execution.task_runs if r.state.failed and r.error]
            if failed:
                execution.error = f"task '{failed[0].task_id}' failed: {failed[0].error}"
        if execution.error:
            execution.error = d.masker.mask(execution.error)
        if execution.state is State.FAILED and d.successor is None:
            self._plan_retry(flow, execution, d)

    def _plan_retry(self, flow: Flow, execution: Execution, d: _Driving) -> None:
        """A flow-level ``CREATE_NEW_EXECUTION`` retry: end this execution RETRIED and prepare
        the one that retries it (same revision, inputs and labels), due after the policy's
        delay. Both are committed together by the next persist."""
        policy = flow.execution_retry
        if policy is None or execution.kill_requested:
            return
        now = utcnow()
        first = execution.first_created or execution.created or now
        due = next_attempt_at(
            policy,
            attempts_made=execution.retry_attempt,
            first_started=first,
            now=now,
            rng=d.executor.rng,
        )
        if due is None:
            return
        successor = self._again(
            flow,
            execution,
            parent_execution_id=execution.parent_execution_id,
            parent_taskrun_id=execution.parent_taskrun_id,
            subflow_depth=execution.subflow_depth,
            retry_attempt=execution.retry_attempt + 1,
            retry_of=execution.id,
            first_created=first,
            scheduled=due,
        )
        successor.transition(State.CREATED, now)
        execution.retried_by = successor.id
        execution.transition(State.RETRIED, now)
        d.successor = successor
        limit = f" of {policy.max_attempts}" if policy.max_attempts else ""
        d.log.add(
            LogRecord(
                execution_id=execution.id,
                level="WARN",
                message=(
                    f"execution failed; try {successor.retry_attempt}{limit} is execution "
                    f"{successor.id}, starting in {format_duration(due - now)}"
                ),
            )
        )

    # -- workers ---------------------------------------------------------------------------------

    async def _work(self, flow: Flow, execution: Execution, d: _Driving, run: TaskRun) -> None:
        event = _Event(run.id)
        spec = d.executor.spec_of(run)
        try:
            async with self._slots:
                ctx = self._context(flow, execution, d, run)
                d.contexts[run.id] = ctx
                await self._prepare_workdir(flow, execution, d, run)
                task = await self._materialise(d, run, spec)
                # timeout and maxAttempts may be templates (plait.engine._templated).
                await resolve_attempts(d.executor.render, run, d.executor.retry_of(spec))
                timeout = await timeout_of(d.executor.render, run, spec)
                if timeout is not None:
                    try:
                        result = await asyncio.wait_for(task.run(ctx), timeout.total_seconds())
                    except TimeoutError:
                        ctx.cancel()
                        raise TaskFailure(f"timed out after {format_duration(timeout)}") from None
                else:
                    result = await task.run(ctx)
                # Kept intact for the tasks after this one; what holds a secret is sealed at
                # rest and masked on every surface (plait.engine._sealing).
                outputs = _outputs_of(result)
                event.outputs = mark(self.key_ring, d.masker, outputs) if d.masker else outputs
                event.effects = list(ctx.effects)
        except asyncio.CancelledError:
            event.killed = True
            event.error = "killed"
        except (TaskFailure, UserError) as error:
            event.error = d.masker.mask(str(error))
        except Exception as error:
            event.error = d.masker.mask(f"{type(error).__name__}: {error}")
            d.log.add(
                LogRecord(
                    execution_id=run.execution_id,
                    taskrun_id=run.id,
                    task_id=run.task_id,
                    attempt=len(run.attempts),
                    level="ERROR",
                    message="".join(traceback.format_exception(error)).rstrip(),
                )
            )
        if event.error and not event.killed:
            d.log.add(
                LogRecord(
                    execution_id=run.execution_id,
                    taskrun_id=run.id,
                    task_id=run.task_id,
                    attempt=len(run.attempts),
                    level="ERROR",
                    message=event.error,
                )
            )
        d.events.put_nowait(event)

    async def _materialise(self, d: _Driving, run: TaskRun, spec: Any) -> Any:
        cls = spec.type_info.task_class
        context = d.executor.context_for(run)
        if _mentions(spec, "workingDir"):
            # Kestra's {{ workingDir }}: created only for the tasks that ask for it.
            context = {**context, "workingDir": str(self._workdir(d, run))}
        render = self._render_for(d.executor.execution, d.masker)
        properties: dict[str, Any] = {}
        text_fields = _text_properties(cls)
        given = run.scratch.get("properties")
        if given is not None:
            # Set by the executor for a task it generated (ForEachItem's merge): not a template.
            return cls.model_validate(given)
        for name, value in spec.properties.items():
            try:
                properties[name] = await render(context, value, name in text_fields)
            except TemplateError as error:
                raise UserError(
                    f"task '{spec.id}', property '{name}': {error.message}"
                    + (f" in `{error.expression}`" if error.expression else "")
                ) from None
        try:
            return cls.model_validate(properties)
        except pydantic.ValidationError as error:
            problems = []
            for item in error.errors(include_url=False):
                where = ".".join(str(p) for p in item["loc"])
                problems.append(f"property '{where}': {item['msg']} (got {item.get('input')!r})")
            raise UserError(f"task '{spec.id}': " + "; ".join(problems)) from None

    def _context(
        self, flow: Flow, execution: Execution, d: _Driving, run: TaskRun
    ) -> TaskRunContext:
        prefix = execution_prefix(flow.namespace, flow.id, execution.id)
        read = self._read_prefixes(execution)
        storage = ExecutionStorage(self.storage, f"{prefix}/{run.task_id}/{run.id}", read)
        render = self._render_for(execution, d.masker)

        async def render_value(value: Any, extra: Mapping[str, Any] | None) -> Any:
            context = d.executor.context_for(run)
            if extra:
                context = {**context, **extra}
            return await render(context, value)

        async def secret(name: str) -> str:
            return await self._secret(execution, d.masker, name, run.task_id)

        return TaskRunContext(
            run=run,
            namespace=flow.namespace,
            flow_id=flow.id,
            log=d.log,
            masker=d.masker,
            storage=storage,
            working_dir=functools.partial(self._workdir, d, run),
            render=render_value,
            secret=secret,
            metrics=d.metrics,
            kv=ScopedKV(self.kv, flow.namespace) if self.kv is not None else None,
            namespace_files=(
                ScopedNamespaceFiles(self.namespace_files, flow.namespace)
                if self.namespace_files is not None
                else None
            ),
            log_level=d.executor.spec_of(run).log_level,
        )

    def _read_prefixes(self, execution: Execution) -> list[str]:
        """What an execution may read: its own files and its parent's (a subflow's inputs)."""
        read = [execution_prefix(execution.namespace, execution.flow_id, execution.id)]
        if execution.parent_execution_id:
            parent = self._driving.get(execution.parent_execution_id)
            if parent is not None:
                pe = parent.executor.execution
                read.append(execution_prefix(pe.namespace, pe.flow_id, pe.id))
        return read

    async def _prepare_workdir(
        self, flow: Flow, execution: Execution, d: _Driving, run: TaskRun
    ) -> None:
        """Before a child of a WorkingDirectory with ``inputFiles``, ``namespaceFiles`` or
        ``cache`` runs: its directory filled once (plait.engine._workdir)."""
        owner = next(
            (
                p
                for p in d.executor.ancestors(run)
                if (m := d.executor.spec_of(p).flowable) is not None
                and m.shares_working_directory()
            ),
            None,
        )
        if owner is None:
            return
        spec = d.executor.spec_of(owner)
        if not WORKDIR_PROPERTIES & spec.properties.keys():
            return
        render = self._render_for(execution, d.masker)

        async def prepare() -> None:
            ctx = self._context(flow, execution, d, owner)  # its storage view and its logs
            await self._workdir_setup.prepare(
                execution_id=execution.id,
                run_id=owner.id,
                properties=spec.properties,
                path=self._workdir(d, run),
                render=lambda value: render(d.executor.context_for(owner), value),
                namespace=flow.namespace,
                flow_id=flow.id,
                task_id=owner.task_id,
                read=ctx.storage.read_bytes,
                log=lambda message: ctx.log.info("%s", message),
            )

        await self._workdir_setup.ensure(execution.id, owner.id, prepare)

    async def _close_workdir(
        self, flow: Flow, execution: Execution, d: _Driving, owner: TaskRun, spec: TaskSpec
    ) -> None:
        """Before a WorkingDirectory run ends: its ``outputFiles`` uploaded as its outputs
        (plait.engine._workdir)."""
        if "outputFiles" not in spec.properties:
            return
        render = self._render_for(execution, d.masker)
        storage = self._context(flow, execution, d, owner).storage
        uris = await collect_output_files(
            spec.properties,
            self._workdir(d, owner),
            lambda value: render(d.executor.context_for(owner), value),
            storage.put,
            asyncio.to_thread,
        )
        outputs = {**owner.outputs, "outputFiles": uris}
        owner.outputs = mark(self.key_ring, d.masker, outputs) if d.masker else outputs

    def _workdir(self, d: _Driving, run: TaskRun) -> Path:
        owner = run
        for parent in d.executor.ancestors(run):
            model = d.executor.spec_of(parent).flowable
            if model is not None and model.shares_working_directory():
                owner = parent
                break
        if owner.id not in d.workdirs:
            d.workdirs[owner.id] = Path(tempfile.mkdtemp(prefix=f"plait-{owner.task_id}-"))
        return d.workdirs[owner.id]

    # -- templates and secrets -------------------------------------------------------------------

    def _render_for(self, execution: Execution, masker: Masker) -> Callable[..., Any]:
        templates = self.templates
        driving = self._driving.get(execution.id)
        functions = driving.functions if driving is not None else None
        if functions is None:
            functions = self._template_functions(execution)
            if driving is not None:
                driving.functions = functions  # once per driven execution, not per render

        async def render(context: dict[str, Any], value: Any, as_text: bool = False) -> Any:
            used: list[str] = []

            async def secret(name: str) -> str:
                task = context.get("task")
                task_id = task.get("id") if isinstance(task, dict) else None
                found = await self._secret(execution, masker, name, task_id)
                used.append(found)
                return found

            async def kv(
                key: str, namespace: str | None = None, errorOnMissing: bool = True
            ) -> Any:
                if self.kv is None:
                    raise UserError(f"kv('{key}'): no key-value store is configured")
                found = await self.kv.entry(namespace or execution.namespace, key)
                if found is None:
                    if errorOnMissing:
                        raise UserError(
                            f"kv('{key}'): no such key in namespace "
                            f"'{namespace or execution.namespace}'"
                        )
                    return None
                return found[1]

            def current_each_output(outputs: Any = None) -> Any:
                return _current_each_output(context, outputs)

            full = {
                **context,
                "secret": secret,
                "kv": kv,
                "currentEachOutput": current_each_output,
                **functions,
            }

            async def leaf(item: Any, text: bool) -> Any:
                # Each string is rendered on its own, so only what a secret flowed into is
                # masked as derived from it, not its neighbours in the same map or list.
                if isinstance(item, dict):
                    return {
                        (await leaf(k, True) if isinstance(k, str) else k): await leaf(v, False)
                        for k, v in item.items()
                    }
                if isinstance(item, list | tuple):
                    items = [await leaf(v, False) for v in item]
                    return items if isinstance(item, list) else tuple(items)
                if not isinstance(item, str):
                    return item
                used.clear()
                # A result is derived from a secret when the render called secret(), used a
                # sensitive value (a SECRET input, an output holding a secret), or holds one.
                with tracking(deep=bool(masker)) as seen:
                    if text:
                        result: Any = await templates.render(item, full)
                    else:
                        result = await templates.render_native(item, full)
                if used or seen.touched or (masker and _holds_known(masker, result)):
                    _mask_derived(masker, result)
                return result

            with templates.budget():  # one time budget for all the strings of the value
                return await leaf(value, as_text)

        return render

    def _template_functions(self, execution: Execution) -> dict[str, Callable[..., Any]]:
        """The engine's template functions that only need the execution: the file functions
        and ``errorLogs()``."""

        async def error_logs() -> list[dict[str, Any]]:
            # Kestra's errorLogs(): the execution's ERROR lines so far, stored or not yet.
            stored = await self.repo.logs(execution.id, min_level="ERROR")
            driving = self._driving.get(execution.id)
            pending = driving.log.pending if driving is not None else []
            return [
                {
                    "namespace": execution.namespace,
                    "flowId": execution.flow_id,
                    "executionId": execution.id,
                    "taskId": r.task_id,
                    "taskRunId": r.taskrun_id,
                    "attemptNumber": r.attempt,
                    "timestamp": r.timestamp.isoformat(),
                    "level": r.level,
                    "message": r.message,
                }
                for r in [*stored, *pending]
                if r.level == "ERROR"
            ]

        store = self.namespace_files

        async def namespace_file(path: str) -> bytes | None:
            return None if store is None else await store.get(execution.namespace, path)

        files = TemplateFiles(
            lambda: ExecutionStorage(self.storage, "_", self._read_prefixes(execution)),
            namespace_file if store is not None else None,
        )
        return {"errorLogs": error_logs, **files.functions()}

    async def secret(self, namespace: str, name: str) -> str:
        """A secret's value as ``secret(name)`` sees it in ``namespace`` (for the server's
        webhook signature checks: never logged, never stored)."""
        if self._secrets is None:
            raise UserError(f"secret('{name}'): no secret backend is configured")
        return str(await self._secrets(namespace, name))

    async def _secret(
        self, execution: Execution, masker: Masker, name: str, task_id: str | None
    ) -> str:
        if self._secrets is None:
            raise UserError(f"secret('{name}'): no secret backend is configured")
        value = await self._secrets(execution.namespace, name)
        masker.add(value)
        if self._on_secret_read is not None:
            await self._on_secret_read(execution.id, task_id, execution.namespace, name)
        return str(value)

    # -- control ---------------------------------------------------------------------------------

    def _cancel_all(self, d: _Driving) -> None:
        for run_id, task in d.workers.items():
            ctx = d.contexts.get(run_id)
            if ctx is not None:
                ctx.cancel()
            task.cancel()
        for run_id in list(d.children):
            child_id = d.executor.runs[run_id].scratch.get("child")
            driving = self._driving.get(child_id) if child_id else None
            if driving is not None and not driving.executor.execution.state.terminal:
                driving.executor.request_kill()
                driving.events.put_nowait(_Event(WAKE))

    async def _resumed_elsewhere(self, execution: Execution, executor: Executor) -> bool:
        """Whether another process resumed a pause this one is waiting out (it then drives the
        execution; this process must stop before it writes its stale copy back)."""
        stored = await self.repo.get_execution(execution.id)
        if stored is None:
            return False
        mine = {r.id: r for r in executor.paused_runs()}
        return any(r.id in mine and r.scratch.get("resumed") for r in stored.task_runs)

    async def _check_remote(self, execution: Execution, executor: Executor) -> None:
        """Apply the kill or pause requests other processes stored for this execution."""
        kill, pause = await self.repo.requests(execution.id)
        if kill and not execution.kill_requested:
            executor.request_kill()
        if pause and not execution.pause_requested:
            executor.request_pause()

    async def kill(self, execution_id: str) -> Execution:
        """Kill a running execution (and its subflows); a paused or queued one ends at once."""
        driving = self._driving.get(execution_id)
        if driving is not None:
            driving.executor.request_kill()
            driving.events.put_nowait(_Event(WAKE))
            return driving.executor.execution
        execution = await self._load(execution_id)
        if execution.state.terminal or not await self.repo.request_kill(execution_id):
            raise UserError(f"execution {execution_id} already ended {execution.state.value}")
        execution.kill_requested = True
        # A paused execution is driven by nobody: end it here. A running one is driven by
        # another process, which sees the request within its poll interval (and so does the
        # holder of a paused one, if it holds it).
        if execution.state is State.PAUSED and await self._claim(execution_id):
            try:
                execution = await self._load(execution_id)  # as stored, under the lease
                if execution.state.terminal:
                    await self._release(execution_id)
                    return execution
                flow = await self.flow_of(
                    execution.namespace, execution.flow_id, execution.flow_revision
                )
            except BaseException as error:
                await self._let_go(execution_id, error)
                raise
            return await self.drive(flow, execution)
        return execution

    async def pause(self, execution_id: str) -> Execution:
        """Pause a running execution at its next safe point: no new task run starts, the
        running ones finish, then it is PAUSED until :meth:`resume`. The request is stored
        first, so the process driving it sees it (within its poll interval) wherever it runs,
        and a recovery after a crash still pauses it."""
        driving = self._driving.get(execution_id)
        execution = driving.executor.execution if driving else await self._load(execution_id)
        if not await self.repo.request_pause(execution_id):
            stored = await self._load(execution_id)
            if stored.kill_requested and not stored.state.terminal:
                raise UserError(f"execution {execution_id} is being killed")
            raise UserError(
                f"only a running execution can be paused; {execution_id} is {stored.state.value}"
            )
        if driving is not None:
            driving.executor.request_pause()
            driving.events.put_nowait(_Event(WAKE))
        else:
            execution.pause_requested = True
        return execution

    async def set_labels(self, execution_id: str, labels: dict[str, Any]) -> Execution:
        """Replace an execution's labels, also while it runs: the copy this process drives is
        changed in place (its next commits keep them) and saved now."""
        driving = self._driving.get(execution_id)
        execution = driving.executor.execution if driving else await self._load(execution_id)
        execution.labels = dict(labels)
        await self.repo.save(execution)
        return execution

    async def resume(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> Execution:
        """Resume a paused execution; the inputs are validated against the Pause's onResume."""
        execution = await self._load(execution_id)
        if execution.state is not State.PAUSED:
            raise UserError(f"execution {execution_id} is {execution.state.value}, not PAUSED")
        driving = self._driving.get(execution_id)
        if driving is None:
            await self._take(execution_id)
        try:
            if driving is None:
                execution = await self._load(execution_id)  # as stored, under the lease
                if execution.state is not State.PAUSED:
                    raise UserError(
                        f"execution {execution_id} is {execution.state.value}, not PAUSED"
                    )
            flow, executor = await self._executor_for(execution)
            paused = executor.paused_runs()
            by_hand = execution.pause_requested
            if not paused and not by_hand:
                children = [r.scratch.get("child") for r in executor.subflow_waits()]
                raise UserError(
                    f"execution {execution_id} waits for its paused subflow execution(s) "
                    f"{', '.join(map(str, children))}: resume that one"
                )
            declared = [i for r in paused for i in _resume_inputs(executor.spec_of(r))]
            probe = Flow.model_validate(
                {
                    "id": "resume",
                    "namespace": "resume",
                    "tasks": [{"id": "t", "type": "x"}],
                    "inputs": [i.model_dump(by_alias=True) for i in declared],
                }
            )
            values = coerce_inputs(probe, inputs or {})
            if driving is not None:
                # This process is waiting out a timed pause of it: resume the live execution,
                # whose loop claims the lease back, commits the change and carries on.
                driving.executor.resume(utcnow(), values)
                if by_hand:
                    await self.repo.clear_pause(execution_id)
                driving.events.put_nowait(_Event(WAKE))
                return driving.executor.execution
            changed = executor.resume(utcnow(), values)
            await self._save(execution, changed)
            if by_hand:
                # Cleared once the resume is stored: a crash in between leaves it PAUSED with
                # its request, so it can still be resumed.
                await self.repo.clear_pause(execution_id)
        except BaseException as error:
            if driving is None:
                await self._let_go(execution_id, error)
            raise
        return await self.drive(flow, execution)

    async def restart(self, execution_id: str) -> Execution:
        """Restart a failed execution from its failed task runs (earlier outputs kept)."""
        await self._take(execution_id)
        try:
            execution = await self._load(execution_id)
            if execution.state not in (State.FAILED, State.KILLED):
                raise UserError(
                    f"only a FAILED or KILLED execution can be restarted; {execution_id} "
                    f"is {execution.state.value}"
                )
            flow, executor = await self._executor_for(execution)
            changed, removed = executor.restart(utcnow())
            await self.repo.clear_kill(execution_id)
            await self.repo.clear_pause(execution_id)
            await self._save(execution, changed, removed=[r.id for r in removed])
        except BaseException as error:
            await self._let_go(execution_id, error)
            raise
        return await self.drive(flow, execution)

    async def replay(self, execution_id: str, taskrun_id: str | None = None) -> Execution:
        """A new execution of the same flow revision and inputs, replayed from a task run.

        Task runs that ended successfully before ``taskrun_id`` (and its ancestors, reopened) are
        copied with their outputs, so the replay starts at that task; with no task run it starts
        from the beginning.
        """
        original = await self._load(execution_id)
        if not original.state.terminal:
            raise UserError(f"execution {execution_id} is still {original.state.value}")
        flow = await self.flow_of(original.namespace, original.flow_id, original.flow_revision)
        replay = self._again(flow, original, original_id=original.id)
        replay.transition(State.CREATED)
        if taskrun_id is not None:
            replay.task_runs = _replayed_runs(original, taskrun_id, replay.id)
            # The copied task runs are not run again: the variables they set carry over (as
            # Kestra's replay carries the execution's variables), as they stood at that point.
            _, executor = await self._executor_for(replay)
            executor.rebuild_variables()
        await self._save_new(replay, replay.task_runs)
        return await self.drive(flow, replay)

    async def recover(self, execution_id: str) -> Execution:
        """Resume an execution whose process died: re-run only the unfinished task runs.

        Only an execution nobody holds is taken: its lease free or expired, or held by a
        process of this host that has exited. :class:`LeaseHeld` otherwise.
        """
        await self._take(execution_id)
        try:
            execution = await self._load(execution_id)  # as stored once the lease is ours
            if execution.state.terminal:
                await self._release(execution_id)
                return execution
            flow, executor = await self._executor_for(execution)
            changed = executor.recover(utcnow())
            await self._save(execution, changed)
            timed = any("resumeAt" in r.scratch for r in executor.paused_runs())
            if execution.state is State.PAUSED and not timed:
                await self._release(execution_id)  # waits for someone to resume it
                return await self._settle_subflow_waits(execution) or execution
        except BaseException as error:
            await self._let_go(execution_id, error)
            raise
        return await self.drive(flow, execution)

    async def recover_all(self) -> list[Execution]:
        """Recover every unfinished execution nobody drives (see :meth:`recover_unfinished`)."""
        return (await self.recover_unfinished()).recovered

    async def recover_unfinished(self, spawn: Spawn | None = None) -> Recovery:
        """Recover every unfinished execution whose lease is free; a subflow waited on by an
        unfinished parent is recovered through that parent (which then gets its result).
        Executions another live process drives are left to it (``skipped``).

        With ``spawn`` (a server's task starter), each recovery runs in a task of its own,
        returned in ``started``, instead of one after the other: a long execution then does
        not hold the others back. Leases keep it safe: a child recovered on its own while its
        parent's recovery follows it is driven once (the parent waits for its end)."""
        done = Recovery()
        unfinished = await self.repo.unfinished_executions()
        pending = set(unfinished)
        seen: set[str] = set()
        for execution_id in unfinished:
            execution = await self._load(execution_id)
            if execution.parent_execution_id in pending:
                continue
            seen.add(execution_id)
            await self._recover_into(done, execution_id, spawn)
        # Children nobody followed (wait: false, or under a paused parent) come next.
        for execution_id in await self.repo.unfinished_executions():
            if execution_id not in seen and execution_id not in self._driving:
                seen.add(execution_id)
                await self._recover_into(done, execution_id, spawn)
        return done

    async def _recover_into(self, done: Recovery, execution_id: str, spawn: Spawn | None) -> None:
        if spawn is not None:
            task = spawn(self._recover_or_skip(execution_id), f"recovery of {execution_id}")
            done.started.append(task)
            return
        try:
            done.recovered.append(await self.recover(execution_id))
        except (LeaseHeld, LeaseLost) as busy:
            done.skipped.append(busy)

    async def _recover_or_skip(self, execution_id: str) -> Execution | None:
        """A recovery in a task of its own: ``None`` when another driver has the execution
        (another process, or this one following it as a parent's subflow)."""
        try:
            return await self.recover(execution_id)
        except (LeaseHeld, LeaseLost) as busy:
            log.debug("not recovered here: %s", busy)
            return None

    async def _notify_parent(self, child: Execution) -> Execution | None:
        """Report an ended subflow to its parent: the parent as then driven, or ``None`` when
        there was nothing to report here (another process holds the parent: it follows the
        child itself, or finds it ended once it gives the parent back)."""
        parent_id = child.parent_execution_id or ""
        if not await self._claim(parent_id):
            return None
        try:
            parent = await self.repo.get_execution(parent_id)
            if parent is None or parent.state.terminal:
                await self._release(parent_id)
                return None
            parent = self._reveal(parent)
            flow, executor = await self._executor_for(parent)
            # Matched by task run, not child id: a flow-level retry of the child is another id.
            waiting = [r for r in executor.subflow_waits() if r.id == child.parent_taskrun_id]
            if not waiting:
                # Its driver follows the child itself (the parent will be recovered if needed).
                await self._release(parent_id)
                return None
            executor.complete_subflow(
                waiting[0].id,
                child_id=child.id,
                state=child.state,
                outputs=child.outputs,
                now=utcnow(),
            )
            await self._save(parent, executor.drain_changes())
        except BaseException as error:
            await self._let_go(parent_id, error)
            raise
        try:
            return await self.drive(flow, parent)
        except LeaseLost as lost:
            log.warning("%s", lost)
            return None

    def _reattach_subflows(self, execution: Execution, d: _Driving) -> None:
        """After a restart, follow the subflows this execution was waiting on."""
        for run in execution.task_runs:
            child_id = run.scratch.get("child")
            spec = d.executor.specs.get(run.task_id)
            if run.state.terminal or not child_id or spec is None or run.id in d.children:
                continue
            if run.state is State.PAUSED:
                continue  # the child is paused: it reports back when it ends
            target = spec.flowable.child_flow() if spec.flowable is not None else None
            if target is None or not target.wait:
                continue
            task = asyncio.create_task(self._follow_child(child_id))
            d.children[run.id] = task
            task.add_done_callback(functools.partial(_child_done, d, run.id))

    async def _follow_child(self, child_id: str) -> Execution:
        """The end (or pause) of a subflow this runner does not drive: recovered here when its
        lease is free, else waited for while another process drives it."""
        while True:
            child = await self._load(child_id)
            while child.state is State.RETRIED and child.retried_by:
                child = await self._load(child.retried_by)
            if child.state.terminal:
                return child
            if child.id in self._driving:
                raise RuntimeError(f"subflow {child.id} is already driven in this process")
            try:
                return await self.recover(child.id)
            except (LeaseHeld, LeaseLost):
                pass  # driven elsewhere: look again in a while
            await asyncio.sleep(self._poll)

    async def _executor_for(self, execution: Execution) -> tuple[Flow, Executor]:
        """The flow revision of a stored execution and an executor over it (with its inputs
        opened), to decide a control operation before the execution is driven again."""
        flow = await self.flow_of(execution.namespace, execution.flow_id, execution.flow_revision)
        render = self._render_for(execution, Masker())
        return flow, Executor(
            flow, execution, inputs=self._open_inputs(flow, execution), render=render
        )

    async def _load(self, execution_id: str) -> Execution:
        execution = await self.repo.get_execution(execution_id)
        if execution is None:
            raise UserError(f"no execution with id {execution_id}")
        return self._reveal(execution)

    def _reveal(self, execution: Execution) -> Execution:
        """Open the sealed values of a stored execution, to drive it again."""
        ring = self.key_ring
        execution.outputs = reveal(ring, execution.outputs)
        if execution.variables is not None:
            execution.variables = reveal(ring, execution.variables)
        for run in execution.task_runs:
            run.outputs = reveal(ring, run.outputs)
            run.scratch = reveal(ring, run.scratch)
            run.value = reveal(ring, run.value)
        return execution

    # -- concurrency and subflows ----------------------------------------------------------------

    async def _admit(self, flow: Flow, execution: Execution, hold: _Hold) -> bool:
        limit = flow.concurrency
        assert limit is not None
        while await self.repo.count_running(flow.namespace, flow.id) >= limit.limit:
            if hold.lost:
                raise LeaseLost(execution.id)
            if await self.repo.kill_requested(execution.id):
                execution.kill_requested = True
                execution.transition(State.KILLED)
                await self._save(execution)
                return False
            if limit.behavior is ConcurrencyBehavior.CANCEL:
                execution.transition(State.CANCELLED)
                execution.error = f"concurrency limit of {limit.limit} reached"
                await self._save(execution)
                return False
            if limit.behavior is ConcurrencyBehavior.FAIL:
                execution.transition(State.FAILED)
                execution.error = f"concurrency limit of {limit.limit} reached"
                await self._save(execution)
                return False
            if execution.state is not State.QUEUED:
                execution.transition(State.QUEUED)
                await self._save(execution)
            await asyncio.sleep(0.05)
        execution.transition(State.RUNNING)
        await self._save(execution)
        return True

    async def _start_subflow(
        self, flow: Flow, execution: Execution, d: _Driving, run: TaskRun
    ) -> None:
        model = d.executor.spec_of(run).flowable
        target = model.child_flow() if model is not None else None
        assert target is not None, "only a task naming a flow asks for one"
        context = d.executor.context_for(run)
        render = self._render_for(execution, d.masker)
        try:
            if target.blueprint:
                namespace, flow_id = await self._deploy_blueprint(flow, target)
            else:
                namespace = await render(context, target.namespace)
                flow_id = await render(context, target.flow_id)
            inputs = await render(context, target.inputs)
            labels = await render(context, target.labels)
            depth = execution.subflow_depth + 1
            most = limits().subflow_max_depth
            if depth > most:
                # A flow calling itself (through a template, or through other flows) would
                # nest executions without end: refuse the one past the limit.
                raise UserError(
                    f"not started: {namespace}.{flow_id} would be nested {depth} subflow "
                    f"executions deep (limit subflow_max_depth is {most}, set with "
                    "PLAIT_LIMIT_SUBFLOW_MAX_DEPTH)"
                )
            child_flow = await self.flow_of(namespace, flow_id, target.revision)
            stored = await self.repo.get_flow(namespace, flow_id, target.revision)
            assert stored is not None
            if target.inherit_labels:  # Kestra's inheritLabels
                labels = {**execution.labels, **labels}
            child = await self.create(
                child_flow,
                stored.revision,
                inputs,
                labels={str(k): d.masker.mask(str(v)) for k, v in labels.items()},
                parent=(execution.id, run.id),
                masker=d.masker,
                subflow_depth=depth,
            )
        except (UserError, TemplateError) as error:
            d.executor.complete_subflow(
                run.id, child_id="", state=State.FAILED, outputs={}, now=utcnow()
            )
            run.error = f"subflow: {error}"
            return
        d.executor.subflow_started(run.id, child.id)

        async def follow() -> Execution:
            # Killing the parent kills the child through _cancel_all (a durable request, not a
            # cancellation of this task); if the process stops, recover() picks the child up.
            try:
                return await self.drive(child_flow, child)
            except LeaseLost:
                return await self._follow_child(child.id)  # another process drives it now

        if target.wait:
            task = asyncio.create_task(follow())
            d.children[run.id] = task

            task.add_done_callback(functools.partial(_child_done, d, run.id))
        else:
            # The child is durable on its own: nobody waits for it here.
            task = asyncio.create_task(follow())
            self._detached.add(task)
            task.add_done_callback(self._detached_done)

    async def _deploy_blueprint(self, flow: Flow, target: ChildFlow) -> tuple[str, str]:
        """The flow a Subflow naming a blueprint runs: the installed blueprint's flow, stored
        in the calling flow's namespace (a new revision only when the blueprint changed)."""
        entry = find(self.host.registry, target.blueprint or "")
        problems = [version_problem(entry.blueprint, target.blueprint_version)]
        problems += requirement_problems(
            entry.blueprint, installed(self.host.registry), self.host.registry
        )
        if any(problems):
            # Checked at validation too; the plugins installed may have changed since.
            raise UserError("; ".join(p for p in problems if p))
        flow_id = subflow_flow_id(entry.blueprint.id)
        source = subflow_source(entry.blueprint, flow.namespace)
        await self.repo.save_flow(flow.namespace, flow_id, source)
        return flow.namespace, flow_id

    def _detached_done(self, task: asyncio.Task[Execution]) -> None:
        self._detached.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("a subflow nobody waits for stopped: %s", error, exc_info=error)


def _host() -> str:
    """This host as lease owners name it: the host name, and the PID namespace when there is
    one (two containers may share a name, never a PID namespace)."""
    name = socket.gethostname().replace(":", "_")
    with contextlib.suppress(OSError):
        name += "/" + os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    return name


def owner_id() -> str:
    """A lease owner id unique to one runner: ``host:pid:random``."""
    return f"{_host()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_is_dead(owner: str) -> bool:
    """Whether a lease owner is a process of this host that has exited (its lease may then be
    taken before it expires). Unknown, another host's or a live process: ``False``, so a live
    owner is never taken from (a reused pid only delays recovery until the lease expires)."""
    try:
        host, pid_text, _token = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != _host() or pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (not ours to signal)
    try:  # killed but not yet reaped by its parent: dead all the same
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in ("Z", "X")


def _current_each_output(context: Mapping[str, Any], outputs: Any) -> Any:
    """Kestra's ``currentEachOutput(outputs.t)``: ``t``'s outputs for the current loop value(s),
    for a task inside the same ForEach as ``t`` (instead of ``outputs.t[taskrun.value]``)."""
    if not isinstance(outputs, dict):
        raise UserError(
            "currentEachOutput(outputs): expects the outputs of a task of the same loop, "
            f"got {type(outputs).__name__}"
        )
    values = context.get(LOOP_VALUES) or []
    if not values:
        raise UserError("currentEachOutput() is only available inside a ForEach")
    level: Any = outputs
    for value in values:
        key = value_key(value)
        if not isinstance(level, dict) or key not in level:
            raise UserError(f"currentEachOutput(): no outputs for the loop value {key!r}")
        level = level[key]
    return level


def _replayed_runs(original: Execution, taskrun_id: str, new_execution_id: str) -> list[TaskRun]:
    by_id = {r.id: r for r in original.task_runs}
    chosen = by_id.get(taskrun_id)
    if chosen is None:
        raise UserError(f"execution {original.id} has no task run {taskrun_id}")
    ancestors: set[str] = set()
    current = chosen
    while current.parent_id is not None:
        ancestors.add(current.parent_id)
        current = by_id[current.parent_id]
    started = chosen.history[0].date
    ids: dict[str, str] = {}
    copied: list[TaskRun] = []
    now = utcnow()
    for run in sorted(original.task_runs, key=lambda r: r.history[0].date):
        reopen = run.id in ancestors
        done = run.state in (State.SUCCESS, State.WARNING, State.SKIPPED)
        if not reopen and not (done and run.history[0].date < started):
            continue
        if run.parent_id is not None and run.parent_id not in ids:
            continue  # its parent is not replayed, so neither is it
        copy = run.model_copy(deep=True)
        copy.id = ids[run.id] = new_id()
        copy.execution_id = new_execution_id
        copy.parent_id = ids.get(run.parent_id) if run.parent_id else None
        if reopen:
            copy.outputs = {}
            copy.error = None
            copy.transition(State.RUNNING, now)
        copied.append(copy)
    return copied


@functools.cache
def _text_properties(cls: type[pydantic.BaseModel]) -> frozenset[str]:
    """Properties (by alias and name) typed as text: their templates render to a string.

    Kestra renders such properties as text (``true``, compact JSON), so ``{{ a > 0 }}`` given
    to a string property is the string ``"true"``, while a number or list property gets the
    native value.
    """
    names = set()
    for name, info in cls.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        if str in args and all(a in (str, type(None)) or _text_list(a) for a in args):
            names.add(name)
            if info.alias:
                names.add(info.alias)
    return frozenset(names)


def _mentions(spec: Any, name: str) -> bool:
    """Whether any string in the properties of ``spec`` mentions ``name``."""

    def walk(value: Any) -> bool:
        if isinstance(value, str):
            return name in value
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(walk(v) for v in value)
        return False

    return walk(spec.properties)


def _child_done(d: _Driving, run_id: str, task: asyncio.Task[Execution]) -> None:
    """A followed subflow ended: report it to its parent's loop."""
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, DatabaseFault):
        d.events.put_nowait(_Event(run_id, fault=error))  # the database, not the subflow
        return
    if error is not None:
        # The parent must not wait forever for a child that will never report: fail the task.
        log.error("following subflow of task run %s failed: %s", run_id, error, exc_info=error)
        d.events.put_nowait(_Event(run_id, child_error=f"{type(error).__name__}: {error}"))
        return
    d.events.put_nowait(_Event(run_id, child=task.result()))


def _remove_dirs(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _text_list(annotation: Any) -> bool:
    """``list[str]``: a text property that also takes several lines (Log's ``message``)."""
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def _outputs_of(result: Output | None) -> dict[str, Any]:
    if result is None:
        return {}
    return result.dump()


def _holds_known(masker: Masker, value: Any) -> bool:
    """Whether a known secret (in any masked form) is inside ``value``."""
    if isinstance(value, str):
        return masker.contains(value)
    if isinstance(value, dict):
        return any(_holds_known(masker, k) or _holds_known(masker, v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_known(masker, v) for v in value)
    return holds_secret(value)


def _mask_derived(masker: Masker, value: Any) -> None:
    """A value a template derived from a secret is itself sensitive."""
    if isinstance(value, str):
        masker.add(str.__str__(value))
    elif isinstance(value, dict):
        for item in value.values():
            _mask_derived(masker, item)
    elif isinstance(value, list):
        for item in value:
            _mask_derived(masker, item)


def _resume_inputs(spec: Any) -> list[Input]:
    """The inputs a resume of a paused task run must carry (a Pause's ``onResume``)."""
    return spec.flowable.resume_inputs() if spec.flowable is not None else []
