"""The one helper that awaits hook results: pluggy is synchronous, hooks may be ``async def``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def resolve(value: T | Awaitable[T]) -> T:
    """Await ``value`` if a hook implementation returned a coroutine, else return it as is."""
    if inspect.isawaitable(value):
        return await value
    return value
