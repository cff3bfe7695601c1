"""Undefined values: chainable (``a.b.c is defined`` works) yet strict (never printed as "")."""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, Undefined
from jinja2.utils import missing


class PlaitUndefined(ChainableUndefined):
    """Attribute and item access on an undefined value stays undefined, so ``??`` and
    ``is defined`` work on whole chains; any *use* of it (printing, comparing, iterating,
    arithmetic, truth) raises, naming the whole path that was undefined."""

    __slots__ = ()

    def _path(self) -> str:
        hint = self._undefined_hint
        if hint and hint.startswith("path:"):
            return hint[5:]
        name = self._undefined_name
        if self._undefined_obj is not missing and name is not None:
            return str(name)
        return str(name) if name is not None else "value"

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        hint = self._undefined_hint
        if hint and not hint.startswith("path:"):
            raise self._undefined_exception(hint)  # the sandbox's "unsafe attribute" message
        raise self._undefined_exception(f"'{self._path()}' is undefined")

    def fail_call(self) -> Any:
        """Raise for a call of this value: an unknown function, a missing method or key."""
        hint = self._undefined_hint
        if hint and not hint.startswith("path:"):
            raise self._undefined_exception(hint)  # the sandbox's "unsafe attribute" message
        obj = self._undefined_obj
        if hint is None and obj is missing:
            raise self._undefined_exception(f"unknown function '{self._path()}'")
        if hint is None and not isinstance(obj, dict | Undefined):
            raise self._undefined_exception(
                f"'{type(obj).__name__}' object has no method '{self._path()}'"
            )
        self._fail_with_undefined_error()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return PlaitUndefined(hint=f"path:{self._path()}.{name}", name=name)

    def __getitem__(self, key: Any) -> Any:
        return PlaitUndefined(hint=f"path:{self._path()}[{key!r}]", name=str(key))

    __iter__ = __str__ = __len__ = __eq__ = __ne__ = __bool__ = __hash__ = __contains__ = (
        _fail_with_undefined_error
    )
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pos__ = __neg__ = __call__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = __int__ = __float__ = _fail_with_undefined_error
    __complex__ = __pow__ = __rpow__ = __aiter__ = _fail_with_undefined_error


def is_undefined(value: Any) -> bool:
    return isinstance(value, Undefined)
