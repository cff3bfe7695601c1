"""Masking: sensitive values never surface, in any of the forms they are commonly printed in.

The one implementation: the core masks a run's logs, errors and outputs with it, and
``plait_sdk.testing`` masks the logs a plugin's tests capture with it, so a test sees exactly
what a real run would store. A :class:`Masker` belongs to one execution. Every secret read,
and every template result derived from one, is registered; :meth:`Masker.mask` then replaces
the value and its JSON-escaped, URL-encoded and base64 forms (at each of the three byte
alignments, so the secret is caught inside a longer base64 string too) by ``******``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "******"
"""What a masked value is replaced by, in logs, errors and outputs.

Example::

    masker = Masker()
    masker.add("s3cr3t-value")
    assert masker.mask("token=s3cr3t-value") == f"token={MASK}"
"""
#: Shorter values are not masked: masking "a" or "42" would shred every log line while
#: protecting nothing a guess could not find. docs/secrets.md says so.
MIN_LENGTH = 3
#: The shortest base64 fragment masked on its own (shorter ones are too likely to collide).
MIN_BASE64_FRAGMENT = 6


def variants(value: str) -> set[str]:
    """The forms of ``value`` that are masked."""
    found = {value}
    found.add(json.dumps(value, ensure_ascii=False)[1:-1])
    found.add(json.dumps(value, ensure_ascii=True)[1:-1])
    found.add(urllib.parse.quote(value, safe=""))
    found.add(urllib.parse.quote_plus(value, safe=""))
    found.add(urllib.parse.quote(value))
    raw = value.encode("utf-8")
    n = len(raw)
    for offset in range(3):
        # Encode as if the value started `offset` bytes into a longer stream, then keep only the
        # characters whose six bits come entirely from the value.
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            start = -(-8 * offset // 6)
            end = (8 * (offset + n)) // 6
            fragment = encoded[start:end]
            if len(fragment) >= MIN_BASE64_FRAGMENT:
                found.add(fragment)
        found.add(base64.b64encode(raw).decode("ascii"))
    return {v for v in found if len(v) >= MIN_LENGTH}


class Masker:
    """The sensitive values of one execution and the replacement of them in text and data.

    Example::

        >>> masker = Masker(["s3cr3t-token"])
        >>> masker.mask("Authorization: Bearer s3cr3t-token")
        'Authorization: Bearer ******'
        >>> masker.mask('{"token": "czNjcjN0LXRva2Vu"}')  # base64 of it too
        '{"token": "******"}'
    """

    #: The forms of a value that are masked (JSON-escaped, URL-encoded, base64...).
    forms = staticmethod(variants)

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a sensitive value (and its derived forms)."""
        if not isinstance(value, str) or len(value) < MIN_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            self._forms |= variants(value)
            # Each line of a multi-line secret (a PEM key) is masked on its own too, since
            # logs are written line by line.
            for line in value.splitlines():
                if len(line.strip()) >= MIN_LENGTH + 3:
                    self._forms.add(line.strip())
            self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._values)

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    def _compiled(self) -> re.Pattern[str]:
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                ordered = sorted(self._forms, key=len, reverse=True)
                pattern = re.compile("|".join(re.escape(f) for f in ordered))
                self._pattern = pattern
        return pattern

    def mask(self, text: str) -> str:
        """``text`` with every registered value (in every form) replaced by ``******``."""
        if not self._values or not text:
            return text
        return self._compiled().sub(MASK, text)

    def contains(self, text: str) -> bool:
        """Whether ``text`` holds a registered value in any of its masked forms."""
        return bool(self._values) and bool(text) and self._compiled().search(text) is not None

    def mask_value(self, value: Any) -> Any:
        """Mask strings anywhere inside dicts, lists and tuples (keys included)."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask_value(k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.mask_value(v) for v in value)
        return value
