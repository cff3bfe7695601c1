"""The core's trigger types: webhooks, cron schedules and flow triggers (registered by the
built-in plugin), and the ``conditions:`` every trigger may have."""

from __future__ import annotations

from plait.triggers._backfill import Backfill, BackfillProgress, begin_backfill
from plait.triggers._conditions import (
    CONDITION_TYPES,
    Condition,
    ConditionContext,
    check,
    condition_names,
    parse_condition,
    parse_conditions,
)
from plait.triggers._flow import (
    ENDED,
    FilterField,
    FlowTrigger,
    Preconditions,
    TimeWindow,
    UpstreamFlow,
)
from plait.triggers._schedule import RecoverMissed, Schedule
from plait.triggers._webhook import FetchType, Provider, Verify, Webhook

__all__ = [
    "CONDITION_TYPES",
    "ENDED",
    "Backfill",
    "BackfillProgress",
    "Condition",
    "ConditionContext",
    "FetchType",
    "FilterField",
    "FlowTrigger",
    "Preconditions",
    "Provider",
    "RecoverMissed",
    "Schedule",
    "TimeWindow",
    "UpstreamFlow",
    "Verify",
    "Webhook",
    "begin_backfill",
    "check",
    "condition_names",
    "parse_condition",
    "parse_conditions",
]
