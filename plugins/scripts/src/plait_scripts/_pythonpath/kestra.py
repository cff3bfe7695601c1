"""``from kestra import Kestra``: Python scripts written for Kestra run unchanged in Plait.

Kestra's helper library publishes outputs and metrics with the same ``::{...}::`` lines Plait's
script tasks read; this module gives its API (``Kestra.outputs``, ``counter``, ``timer``,
``logger``) on top of :mod:`plait_script`, on the ``PYTHONPATH`` of every Python task, so a
script importing it needs no ``pip install kestra``.

Kept importable by any Python 3.8+ interpreter: the standard library only.
"""

from __future__ import annotations

import logging

# A sibling module on the script's PYTHONPATH, not part of a package mypy can follow.
from plait_script import Plait  # type: ignore[import-not-found]

__all__ = ["Kestra"]

_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}


class _ProtocolHandler(logging.Handler):
    """Sends each record as a ``logs`` line of the protocol (logged at its level)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _LEVELS.get(record.levelname, record.levelname)
            Plait.log(self.format(record), level)
        except Exception:  # a logging handler never raises into the script
            self.handleError(record)


class Kestra(Plait):  # type: ignore[misc]
    """Kestra's ``Kestra`` class: ``outputs``, ``counter``, ``timer`` (a number of seconds, or
    a callable it calls and times) and ``logger``."""

    _logger: logging.Logger | None = None

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records land in the task run's logs at their level."""
        if Kestra._logger is None:
            logger = logging.getLogger("Kestra")
            logger.setLevel(logging.DEBUG)
            logger.addHandler(_ProtocolHandler())
            logger.propagate = False
            Kestra._logger = logger
        return Kestra._logger
