"""Masking: the SDK's ``Masker`` (one implementation for the core and plugins' test harness).

A :class:`Masker` belongs to one execution. Every secret read, and every template result derived
from one, is registered; :meth:`Masker.mask` then replaces the value and its JSON-escaped,
URL-encoded and base64 forms by ``******`` (docs/secrets.md).
"""

from __future__ import annotations

from plait_sdk import MASK, Masker

variants = Masker.forms

__all__ = ["MASK", "Masker", "variants"]
