"""The execution engine: durable executions, the executor, workers and persistence."""

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
from plait.engine._repository import Repository
from plait.templating._taint import masked_view

__all__ = [
    "Attempt",
    "Execution",
    "FlowRevision",
    "LogRecord",
    "MetricRecord",
    "Repository",
    "TaskRun",
    "Transition",
    "masked_view",
    "new_id",
    "utcnow",
]
