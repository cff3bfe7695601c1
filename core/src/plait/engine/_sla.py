"""A flow's SLAs (Kestra's ``sla``): what happens to an execution that breaches one.

``MAX_DURATION``: once an execution has run longer than the duration (counted from its
creation, across restarts and pauses, as Kestra counts it), the SLA acts: ``FAIL`` and
``CANCEL`` kill what still runs and end the execution FAILED or CANCELLED; ``NONE`` only warns.
``EXECUTION_ASSERTION``: when the execution ends, the ``assert`` expression is rendered; if it is
not true the SLA acts the same way on the ended execution (``FAIL`` turns a SUCCESS or WARNING
into FAILED, ``CANCEL`` into CANCELLED).

Every breach adds the SLA's labels to the execution and writes a warning to its logs, and is
recorded (``Execution.slas_breached``) so an SLA acts once. The runner calls :func:`due` on
every pass of its loop (and wakes at :func:`next_deadline`), and :func:`assert_ended` before it
finalizes an ended execution.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from plait.flows import Flow, Sla, SlaBehavior, SlaType, State
from plait.records import Execution
from plait.templating import TemplateError, format_duration

Render = Callable[[Any], Awaitable[Any]]


def _open(flow: Flow, execution: Execution, kind: SlaType) -> list[Sla]:
    return [s for s in flow.sla if s.type is kind and s.id not in execution.slas_breached]


def next_deadline(flow: Flow, execution: Execution) -> datetime | None:
    """When the first MAX_DURATION SLA not yet breached is breached."""
    created = execution.first_created or execution.created
    if created is None:
        return None
    deadlines = [
        created + s.duration for s in _open(flow, execution, SlaType.MAX_DURATION) if s.duration
    ]
    return min(deadlines, default=None)


def due(flow: Flow, execution: Execution, now: datetime) -> list[str]:
    """Breach every MAX_DURATION SLA whose duration has passed; the warnings to log."""
    if execution.state.terminal:
        return []
    created = execution.first_created or execution.created
    warnings = []
    for sla in _open(flow, execution, SlaType.MAX_DURATION):
        assert sla.duration is not None
        if created is None or now < created + sla.duration:
            continue
        reason = f"ran longer than {format_duration(sla.duration)}"
        warnings.append(_breach(execution, sla, reason, running=True))
    return warnings


async def assert_ended(flow: Flow, execution: Execution, render: Render) -> list[str]:
    """Check the EXECUTION_ASSERTION SLAs of an ended execution; the warnings to log."""
    warnings = []
    for sla in _open(flow, execution, SlaType.EXECUTION_ASSERTION):
        try:
            held = await render(sla.assert_)
        except TemplateError as error:
            held, reason = False, f"its assertion does not render: {error}"
        else:
            reason = f"its assertion {sla.assert_!r} is not true"
        if _true(held):
            continue
        warnings.append(_breach(execution, sla, reason, running=False))
    return warnings


def _true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def _breach(execution: Execution, sla: Sla, reason: str, *, running: bool) -> str:
    execution.slas_breached = [*execution.slas_breached, sla.id]
    execution.labels = {**execution.labels, **sla.labels}
    message = f"SLA '{sla.id}' breached: the execution {reason}"
    if sla.behavior is SlaBehavior.NONE:
        return message
    state = State.FAILED if sla.behavior is SlaBehavior.FAIL else State.CANCELLED
    execution.error = message
    if running:
        execution.kill_state = state
        execution.kill_requested = True  # the runner cancels what runs, then it ends in state
    elif not (state is State.FAILED and execution.state in (State.FAILED, State.KILLED)):
        execution.transition(state)
    return message
