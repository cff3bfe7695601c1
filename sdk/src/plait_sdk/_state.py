"""Execution and task-run states, shared by the core and by plugins (flowables read them)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Execution and task-run states (Kestra's).

    Example::

        >>> State.FAILED.terminal, State.FAILED.failed, State.RUNNING.terminal
        (True, True, False)
    """

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLING = "KILLING"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    RETRIED = "RETRIED"
    """Ended FAILED and was retried as a new execution (a flow-level ``CREATE_NEW_EXECUTION``
    retry); ``retriedBy`` names that execution."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def failed(self) -> bool:
        return self in (State.FAILED, State.KILLED, State.CANCELLED)


TERMINAL_STATES = frozenset(
    {
        State.SUCCESS,
        State.WARNING,
        State.FAILED,
        State.KILLED,
        State.CANCELLED,
        State.SKIPPED,
        State.RETRIED,
    }
)
"""The states in which a task run or an execution has ended.

Example::

    >>> State.RUNNING in TERMINAL_STATES, State.KILLED in TERMINAL_STATES
    (False, True)
"""
