"""The durable records: executions, task runs, logs, metrics and flow revisions, and the
repository interface that persists them.

A leaf of the core: the engine decides from these records, the SQL persistence (plait.storage)
stores them, the server reads them, and none of those needs another to name them.
"""

from plait.records._model import (
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
from plait.records._repository import (
    EXIT_UNFINISHED,
    DatabaseFault,
    Lease,
    LeaseHeld,
    LeaseHolder,
    LeaseLost,
    Repository,
)

__all__ = [
    "EXIT_UNFINISHED",
    "Attempt",
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
    "new_id",
    "utcnow",
]
