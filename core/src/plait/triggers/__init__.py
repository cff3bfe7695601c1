"""The core's trigger types: webhooks and cron schedules (registered by the built-in plugin)."""

from __future__ import annotations

from plait.triggers._backfill import Backfill, BackfillProgress, begin_backfill
from plait.triggers._schedule import RecoverMissed, Schedule
from plait.triggers._webhook import Provider, Verify, Webhook

__all__ = [
    "Backfill",
    "BackfillProgress",
    "Provider",
    "RecoverMissed",
    "Schedule",
    "Verify",
    "Webhook",
    "begin_backfill",
]
