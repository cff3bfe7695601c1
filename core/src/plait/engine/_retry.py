"""Retry policies: when (and whether) a failed attempt is tried again.

For the retry number ``n`` (1 before the second attempt, 2 before the third...):

* constant: ``interval``
* exponential: ``min(interval * delayFactor ** (n - 1), maxInterval)``, then with ``jitter = j``
  multiplied by a factor drawn uniformly from ``[1 - j, 1 + j]`` and capped at ``maxInterval``
* random: uniform in ``[minInterval, maxInterval]``

No retry once ``maxAttempts`` attempts have been made, or when the next attempt would start
later than ``maxDuration`` after the first one started.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from plait.flows import ConstantRetry, ExponentialRetry, RandomRetry, Retry


def delay(policy: Retry, retry_number: int, rng: random.Random) -> timedelta:
    """The wait before retry ``retry_number`` (1-based)."""
    if isinstance(policy, ConstantRetry):
        return policy.interval
    if isinstance(policy, ExponentialRetry):
        base = policy.interval.total_seconds() * policy.delay_factor ** (retry_number - 1)
        cap = policy.max_interval.total_seconds()
        seconds = min(base, cap)
        if policy.jitter:
            seconds *= rng.uniform(1 - policy.jitter, 1 + policy.jitter)
            seconds = min(seconds, cap)
        return timedelta(seconds=seconds)
    if isinstance(policy, RandomRetry):
        low, high = policy.min_interval.total_seconds(), policy.max_interval.total_seconds()
        return timedelta(seconds=rng.uniform(low, high))
    raise TypeError(f"unknown retry policy {policy!r}")


def next_attempt_at(
    policy: Retry | None,
    *,
    attempts_made: int,
    first_started: datetime,
    now: datetime,
    rng: random.Random,
) -> datetime | None:
    """When the next attempt is due, or ``None`` when the policy allows no more."""
    if policy is None:
        return None
    # A templated maxAttempts not rendered (plait.engine._templated.retry_for) allows none.
    limit = policy.max_attempts if isinstance(policy.max_attempts, int) else 1
    if policy.max_attempts is not None and attempts_made >= limit:
        return None
    due = now + delay(policy, attempts_made, rng)
    if policy.max_duration is not None and due - first_started > policy.max_duration:
        return None
    return due
