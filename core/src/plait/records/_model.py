"""Executions and task runs: the engine's durable state.

Everything the executor decides from is here, and all of it is persisted before it is acted
on, so a process killed at any point resumes from what the repository holds.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from plait_sdk import Model
from pydantic import Field, field_serializer

from plait.flows import State
from plait.templating import at_rest

_last_ms = 0
_seq = 0


def new_id() -> str:
    """A time-ordered, URL-safe, globally unique id (ULID-like: 48-bit ms time + 80 random bits).

    Sorting ids sorts by creation time, which the repository's indexes rely on.
    """
    global _last_ms, _seq
    ms = int(time.time() * 1000)
    if ms == _last_ms:
        _seq += 1
    else:
        _last_ms, _seq = ms, 0
    rand = int.from_bytes(_random_bytes(), "big")
    value = (ms << 80) | ((_seq & 0xFFFF) << 64) | rand
    # 26 base-32 digits, two at a time from a table (digit by digit with big-int divmods it
    # was ~10 µs, paid for every execution and task run).
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 0x3FF] for shift in _SHIFTS])


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))
_pool = b""


def _random_bytes() -> bytes:
    """8 bytes from the OS's random source, read 4 KiB at a time (one system call per id
    was a visible share of creating an execution)."""
    global _pool
    if len(_pool) < 8:
        _pool = os.urandom(4096)
    taken, _pool = _pool[:8], _pool[8:]
    return taken


def _forget_pool() -> None:
    global _pool
    _pool = b""  # a forked child must not hand out its parent's next ids


os.register_at_fork(after_in_child=_forget_pool)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Transition(Model):
    """A state entered at a time."""

    state: State
    date: datetime


class Attempt(Model):
    """One try at running a task run."""

    number: int
    state: State
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None


class TaskRun(Model):
    """One run of one task of a flow in one execution (once per ForEach value, per retry...)."""

    id: str = Field(default_factory=new_id)
    execution_id: str
    task_id: str
    parent_id: str | None = None
    """The task run of the flowable task this one is a child of."""
    value: Any = None
    """The ForEach value this run belongs to (``taskrun.value``)."""
    iteration: int | None = None
    """The loop iteration this run belongs to (``taskrun.iteration``)."""
    state: State = State.CREATED
    history: list[Transition] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    retry_at: datetime | None = None
    """When the next attempt is due while RETRYING."""
    scratch: dict[str, Any] = Field(default_factory=dict)
    """Durable bookkeeping of flowable tasks (current StateMachine state, loop counters...)."""

    @field_serializer("value", "outputs", "scratch")
    def _sealed(self, value: Any) -> Any:
        # Values holding a secret are written sealed, never in clear (plait.templating._taint).
        return at_rest(value)

    def transition(self, state: State, at: datetime | None = None) -> None:
        self.state = state
        self.history.append(Transition(state=state, date=at or utcnow()))


class Execution(Model):
    """One run of a flow."""

    id: str = Field(default_factory=new_id)
    namespace: str
    flow_id: str
    flow_revision: int
    state: State = State.CREATED
    history: list[Transition] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    parent_execution_id: str | None = None
    parent_taskrun_id: str | None = None
    subflow_depth: int = 0
    """How many subflow executions this one is nested in (0: not started by a subflow)."""
    original_id: str | None = None
    """For a replay: the execution it was replayed from."""
    attempt: int = 1
    """Incremented by each restart from a failed task."""
    retry_attempt: int = 1
    """Which try of a flow-level ``CREATE_NEW_EXECUTION`` retry this is (1: the first run)."""
    retry_of: str | None = None
    """For a flow-level retry: the execution this one retries (now RETRIED)."""
    retried_by: str | None = None
    """Set when this execution ended RETRIED: the execution that retries it."""
    first_created: datetime | None = None
    """For a flow-level retry: when the first try was created (maxDuration counts from it)."""
    scheduled: datetime | None = None
    """Not started before this time (the delay before a flow-level retry)."""
    kill_requested: bool = False
    pause_requested: bool = False
    """A manual pause was asked for (``POST .../pause``): no new task run starts; once none
    runs, the execution is PAUSED until resumed."""
    variables: dict[str, Any] | None = None
    """The flow's variables as changed by SetVariables / UnsetVariables (``vars``); ``None``
    while unchanged."""
    exit_state: State | None = None
    """Set by an Exit task: the state the execution ends in once nothing runs any more."""
    exit_run: str | None = None
    """The Exit task run that set ``exit_state``."""
    kill_state: State | None = None
    """The state a kill ends the execution in (FAILED or CANCELLED for a breached SLA);
    KILLED when unset."""
    slas_breached: list[str] = Field(default_factory=list)
    """Ids of the flow's SLAs this execution breached (each acts once)."""
    task_runs: list[TaskRun] = Field(default_factory=list)

    @field_serializer("inputs", "trigger", "outputs", "variables")
    def _sealed(self, value: Any) -> Any:
        return at_rest(value)

    def transition(self, state: State, at: datetime | None = None) -> None:
        self.state = state
        self.history.append(Transition(state=state, date=at or utcnow()))

    @property
    def created(self) -> datetime | None:
        return self.history[0].date if self.history else None

    @property
    def ended(self) -> datetime | None:
        return self.history[-1].date if self.history and self.state.terminal else None


class LogRecord(Model):
    """One log line of an execution (already masked)."""

    execution_id: str
    taskrun_id: str | None = None
    task_id: str | None = None
    attempt: int | None = None
    level: str
    message: str
    timestamp: datetime = Field(default_factory=utcnow)
    seq: int | None = None
    """Assigned by the repository: a per-store increasing number for live tailing."""


class MetricRecord(Model):
    """One metric point of a task run."""

    execution_id: str
    taskrun_id: str
    task_id: str
    name: str
    type: str
    value: float
    tags: dict[str, str] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=utcnow)


class FlowRevision(Model):
    """A stored flow source at one revision."""

    namespace: str
    flow_id: str
    revision: int
    source: str
    created: datetime = Field(default_factory=utcnow)
    deleted: bool = False
