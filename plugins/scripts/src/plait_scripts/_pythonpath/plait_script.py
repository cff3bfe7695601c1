"""Helpers for Python code run by a Plait script task: ``from plait_script import Plait``.

Python tasks of plait-scripts put this module on ``PYTHONPATH``. Each call prints one line of
the ``::{...}::`` protocol on standard output, which the task reads (and does not log)::

    from plait_script import Plait

    Plait.outputs({"rows": 42, "status": "ok"})       # outputs.<taskId>.vars.rows
    Plait.counter("rows", 42, {"table": "orders"})    # a metric of the task run
    Plait.timer("load", 1.5)                          # seconds
    elapsed = Plait.timer("query", run_query)         # times the call, returns its result
    Plait.gauge("queue_depth", 7)
    Plait.log("something to look at", "WARNING")

Kept importable by any Python 3.8+ interpreter (the one on the task's ``PATH`` may be older than
Plait's): the standard library only, and no syntax newer than 3.8.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["Plait"]

T = TypeVar("T")
_lock = threading.Lock()


def _default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class Plait:
    """Publish outputs, metrics and log lines from a script (Kestra's ``Kestra`` class)."""

    @staticmethod
    def emit(payload: Mapping[str, Any]) -> None:
        """Print ``payload`` as one protocol line (``::{...}::``) and flush."""
        line = "::" + json.dumps(dict(payload), separators=(",", ":"), default=_default) + "::"
        with _lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    @staticmethod
    def outputs(values: Mapping[str, Any]) -> None:
        """Publish ``values`` as ``outputs.<taskId>.vars.<key>`` (several calls are merged)."""
        Plait.emit({"outputs": dict(values)})

    @staticmethod
    def counter(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        """Add ``value`` to the counter metric ``name``."""
        Plait._metric("counter", name, value, tags)

    @staticmethod
    def gauge(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        """Record ``value`` as the gauge metric ``name``."""
        Plait._metric("gauge", name, value, tags)

    @staticmethod
    def timer(
        name: str,
        duration: float | datetime.timedelta | Callable[[], T],
        tags: Mapping[str, Any] | None = None,
    ) -> T | None:
        """Record a duration in seconds; given a callable, call it, time it and return its
        result."""
        if callable(duration):
            started = time.perf_counter()
            result = duration()
            Plait._metric("timer", name, time.perf_counter() - started, tags)
            return result
        if isinstance(duration, datetime.timedelta):
            duration = duration.total_seconds()
        Plait._metric("timer", name, duration, tags)
        return None

    @staticmethod
    def log(message: str, level: str = "INFO") -> None:
        """Log ``message`` at ``level`` (DEBUG, INFO, WARNING or ERROR) in the task run."""
        Plait.emit({"logs": [{"level": level.upper(), "message": str(message)}]})

    @staticmethod
    def _metric(kind: str, name: str, value: float, tags: Mapping[str, Any] | None) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"the value of metric {name!r} must be a number, not {value!r}")
        metric: dict[str, Any] = {"name": str(name), "type": kind, "value": value}
        if tags:
            metric["tags"] = {str(k): v if isinstance(v, str) else str(v) for k, v in tags.items()}
        Plait.emit({"metrics": [metric]})
