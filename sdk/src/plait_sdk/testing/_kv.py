"""The key-value store for tests: the core's types, keys, expiry and overwrite rules, in memory."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from plait_sdk._context import KeyValueStore
from plait_sdk._errors import UserError
from plait_sdk.testing._clock import FakeClock

TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
_KEY = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise UserError(f"invalid KV key {key!r}: letters, digits, '_', '.', '-', '/' (max 255)")
    return key


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, timedelta):
        return "DURATION"
    if isinstance(value, str):
        return "STRING"
    return "JSON"


def _convert(value: Any, kind: str) -> Any:
    """``value`` as the store gives it back for ``kind`` (what a JSON round trip keeps)."""
    try:
        if kind == "STRING":
            return value if isinstance(value, str) else json.dumps(value, default=str)
        if kind == "NUMBER":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            return value if isinstance(value, int | float) else float(value)
        if kind == "BOOLEAN":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError(f"{value!r} is not a boolean")
        if kind == "DATETIME":
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if kind == "DATE":
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if kind == "DURATION":
            if isinstance(value, timedelta):
                return value
            raise ValueError("give a timedelta")
        plain = json.loads(value) if isinstance(value, str) else value
        return json.loads(json.dumps(plain))
    except (ValueError, TypeError) as error:
        raise UserError(f"KV value {str(value)[:100]!r} is not a valid {kind}: {error}") from None


@dataclass
class _Entry:
    kind: str
    value: Any
    expires: datetime | None


class MemoryKeyValueStore(KeyValueStore):
    """``ctx.kv`` in the harness: typed values by (namespace, key), expiring on the fake clock.

    Shared by every task run and evaluation of one harness, so what one stores the next reads.
    Seed it with :meth:`seed` (or the harness's ``kv=`` argument) and inspect it with
    :meth:`snapshot`.

    Example::

        kv = MemoryKeyValueStore("company.team", FakeClock())
        await kv.set("cursor", 42)
        assert kv.snapshot() == {"company.team": {"cursor": 42}}
    """

    def __init__(self, namespace: str, clock: FakeClock) -> None:
        self.namespace = namespace
        self.clock = clock
        self._data: dict[tuple[str, str], _Entry] = {}

    def seed(self, values: dict[str, Any], *, namespace: str | None = None) -> None:
        """Store ``values`` (key to value, types inferred) without going through a task."""
        for key, value in values.items():
            kind = _infer_type(value)
            self._data[(namespace or self.namespace, _check_key(key))] = _Entry(
                kind, _convert(value, kind), None
            )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The live values, by namespace then key."""
        found: dict[str, dict[str, Any]] = {}
        for (namespace, key), entry in sorted(self._data.items()):
            if not self._expired(entry):
                found.setdefault(namespace, {})[key] = copy.deepcopy(entry.value)
        return found

    def _expired(self, entry: _Entry) -> bool:
        return entry.expires is not None and entry.expires <= self.clock.now()

    def _live(self, namespace: str, key: str) -> _Entry | None:
        entry = self._data.get((namespace, key))
        if entry is not None and self._expired(entry):
            del self._data[(namespace, key)]
            return None
        return entry

    async def get(self, key: str, *, namespace: str | None = None) -> Any:
        entry = self._live(namespace or self.namespace, _check_key(key))
        return None if entry is None else copy.deepcopy(entry.value)

    async def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: str | None = None,
        ttl: timedelta | None = None,
        type: str | None = None,
        overwrite: bool = True,
    ) -> None:
        ns = namespace or self.namespace
        _check_key(key)
        kind = (type or _infer_type(value)).upper()
        if kind not in TYPES:
            raise UserError(f"unknown KV type {kind!r}; one of {', '.join(TYPES)}")
        converted = _convert(value, kind)
        if not overwrite and self._live(ns, key) is not None:
            raise UserError(f"KV key {ns}/{key} exists and overwrite is false")
        expires = self.clock.now() + ttl if ttl is not None else None
        self._data[(ns, key)] = _Entry(kind, converted, expires)

    async def delete(self, key: str, *, namespace: str | None = None) -> bool:
        return self._data.pop((namespace or self.namespace, _check_key(key)), None) is not None

    async def keys(self, prefix: str = "", *, namespace: str | None = None) -> list[str]:
        ns = namespace or self.namespace
        return sorted(
            key
            for (n, key) in list(self._data)
            if n == ns and key.startswith(prefix) and self._live(n, key) is not None
        )

    async def value(self, key: str, namespace: str | None = None) -> Any:
        """What the template function ``kv(key)`` returns (``None`` when missing)."""
        return await self.get(key, namespace=namespace)
