"""The execution engine: durable executions, the executor, workers and persistence."""

from plait.engine._context import ContextBase
from plait.engine._model import (
    Attempt,
    Execution,
    FlowRevision,
    LogRecord,
    MetricRecord,
    TaskRun,
    Transition,
    new_id,
    utcnow,
)
from plait.engine._repository import (
    EXIT_UNFINISHED,
    DatabaseFault,
    Lease,
    LeaseHeld,
    LeaseHolder,
    LeaseLost,
    Repository,
)
from plait.templating._taint import masked_view

__all__ = [
    "EXIT_UNFINISHED",
    "Attempt",
    "ContextBase",
    "DatabaseFault",
    "Execution",
    "FlowRevision",
    "Lease",
    "LeaseHeld",
    "LeaseHolder",
    "LeaseLost",
    "LogRecord",
    "MetricRecord",
    "Repository",
    "TaskRun",
    "Transition",
    "masked_view",
    "new_id",
    "utcnow",
]
