"""Knowing when a render used a sensitive value, so its result is treated as sensitive too.

Sensitive values reach templates as :class:`SecretText`: SECRET inputs, and task or flow outputs
that hold a secret. A :class:`SecretText` is a ``str`` in every way a template or a task can see;
it also carries its sealed form, which is what persistence writes instead of the text
(:func:`at_rest`). While a render runs inside :func:`tracking`, every point where a value is used
(attribute and item access, filters, tests, function calls, operators, string conversion, the
printed result) marks the render as *touched* when that value is a :class:`SecretText`; the
engine then masks the result and seals it if it lands in an output, exactly as it does for a
result that called ``secret()``.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, SupportsIndex

#: How a sealed output value is stored: ``{"$secret": base64 ciphertext, "$key": key id}``.
SECRET, SECRET_KEY = "$secret", "$key"
MASK = "******"


class SecretText(str):
    """Text that holds a secret: a plain ``str`` to templates and tasks, sealed at rest.

    ``sealed`` is the at-rest form (``{"$secret": ..., "$key": ...}``), computed when the value
    was marked, so the models can be serialised without the key ring.
    """

    sealed: dict[str, str] | None = None

    @classmethod
    def of(cls, text: str, sealed: dict[str, str] | None) -> SecretText:
        value = cls(text)
        value.sealed = sealed
        return value

    # Each of these is a way a template can use the text without an attribute access.
    def __str__(self) -> str:
        touch(self)
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        touch(self)
        return str.__format__(self, spec)

    def __add__(self, other: str) -> str:
        touch(self)
        return str.__add__(self, other)

    def __radd__(self, other: str) -> str:
        touch(self)
        return other + str.__str__(self)

    def __mul__(self, count: SupportsIndex) -> str:
        touch(self)
        return str.__mul__(self, count)

    def __mod__(self, args: Any) -> str:
        touch(self)
        return str.__mod__(self, args)

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        touch(self)
        return str.__getitem__(self, key)

    def __iter__(self) -> Iterator[str]:
        touch(self)
        return str.__iter__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretText.of, (str.__str__(self), self.sealed))

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretText:
        return self

    def __copy__(self) -> SecretText:
        return self


@dataclass
class Tracker:
    """Whether the render in progress used a sensitive value."""

    deep: bool = True
    touched: bool = False


_current: ContextVar[Tracker | None] = ContextVar("plait_taint", default=None)


@contextmanager
def tracking(*, deep: bool = True) -> Iterator[Tracker]:
    """Track the renders run inside the block (one asyncio task's own context).

    ``deep`` also looks inside lists and maps handed whole to a filter or returned natively
    (the cost of a walk, worth paying only when the execution has sensitive values at all).
    """
    tracker = Tracker(deep=deep)
    token = _current.set(tracker)
    try:
        yield tracker
    finally:
        _current.reset(token)


def touch_text(*values: Any) -> None:
    """Like :func:`touch`, without looking inside containers (attribute and item access: reaching
    into ``outputs`` is not using the secret one of its leaves holds)."""
    tracker = _current.get()
    if tracker is not None and not tracker.touched:
        tracker.touched = any(isinstance(v, SecretText) for v in values)


def touch(*values: Any) -> None:
    """Mark the current render touched when one of ``values`` is sensitive (or, in ``deep``
    mode, a list or map holding one: a filter or a native result takes it whole)."""
    tracker = _current.get()
    if tracker is None or tracker.touched:
        return
    for value in values:
        if isinstance(value, SecretText) or (
            tracker.deep and isinstance(value, dict | list | tuple) and holds_secret(value)
        ):
            tracker.touched = True
            return


def holds_secret(value: Any) -> bool:
    """Whether a :class:`SecretText` is anywhere inside ``value``."""
    if isinstance(value, SecretText):
        return True
    if isinstance(value, dict):
        return any(holds_secret(k) or holds_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_secret(v) for v in value)
    return False


def tracked(fn: Any) -> Callable[..., Any]:
    """A filter, test or function that marks the render touched when given a sensitive value."""
    if getattr(fn, "_plait_tracked", False):
        return typing.cast(Callable[..., Any], fn)

    call: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):
        # Stays a coroutine function: Jinja must never call it outside an await.

        @functools.wraps(fn)  # keeps Jinja's pass_context / pass_environment marker
        async def call(*args: Any, **kwargs: Any) -> Any:
            if _current.get() is not None:
                touch(*args, *kwargs.values())
            return await fn(*args, **kwargs)

    else:

        @functools.wraps(fn)  # keeps Jinja's pass_context / pass_environment marker
        def call(*args: Any, **kwargs: Any) -> Any:
            if _current.get() is not None:
                touch(*args, *kwargs.values())
            return fn(*args, **kwargs)

    call._plait_tracked = True  # type: ignore[attr-defined]
    return call


def is_sealed(value: Any) -> bool:
    """A sealed output value as stored (``{"$secret": ..., "$key": ...}``)."""
    return isinstance(value, dict) and len(value) == 2 and SECRET in value and SECRET_KEY in value


def at_rest(value: Any) -> Any:
    """``value`` as persisted: every :class:`SecretText` replaced by its sealed form.

    Returns ``value`` itself when nothing inside is sensitive (the common case: no copy).
    A sensitive text without a sealed form is written masked, never in clear.
    """
    if isinstance(value, SecretText):
        return dict(value.sealed) if value.sealed is not None else MASK
    if isinstance(value, dict):
        if not holds_secret(value):
            return value
        return {(MASK if isinstance(k, SecretText) else k): at_rest(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if not holds_secret(value):
            return value
        return [at_rest(v) for v in value]
    return value


def masked_view(value: Any) -> Any:
    """``value`` as a person or another system may read it: sensitive values as ``******``.

    Applies to live values (:class:`SecretText`) and stored ones (sealed outputs, sealed
    inputs) alike.
    """
    if isinstance(value, SecretText):
        return MASK
    if isinstance(value, dict):
        if is_sealed(value) or (len(value) == 2 and "$sealed" in value and "$key" in value):
            return MASK
        return {masked_view(k): masked_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked_view(v) for v in value]
    return value
