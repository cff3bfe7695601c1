"""The sandbox's resource limits: sizes, integer bits, a time budget per render, regex time.

Every check happens *before* the value is built when its size can be known in advance (``'a' *
10**10``, ``2 ** (2 ** 36)``, ``'x' | center(10**9)``), and on the result otherwise. A limit hit
is a :class:`TemplateLimitError` naming the limit and its environment variable; the engine's
caller adds the task and property being rendered.

The time budget is a deadline in a context variable, set by the outermost render (or by
:func:`budget` around a whole property) and checked where a long render must pass: every call,
intercepted operator, loop iteration and output piece. A render is a coroutine that never
yields while it computes, so nothing else could stop it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import BuiltinMethodType, FunctionType
from typing import Any, NoReturn

from plait.limits import ENV_PREFIX, limits
from plait.templating._errors import TemplateRenderError


class TemplateLimitError(TemplateRenderError):
    """A template went over one of the sandbox's limits (size, integer, time, regex)."""


def _var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def fail_size(what: str, size: int, unit: str, name: str, limit: int) -> NoReturn:
    raise TemplateLimitError(
        f"{what} would have {size:,} {unit}, more than the limit of {limit:,} ({_var(name)})"
    )


def check_string(size: int, what: str = "the text") -> None:
    limit = limits().template_max_string
    if size > limit:
        fail_size(what, size, "characters", "template_max_string", limit)


def check_items(size: int, what: str = "the list") -> None:
    limit = limits().template_max_items
    if size > limit:
        fail_size(what, size, "items", "template_max_items", limit)


def check_bits(bits: int | float, what: str = "the number") -> None:
    limit = limits().template_max_int_bits
    if bits > limit:
        fail_size(what, int(bits), "bits", "template_max_int_bits", limit)


def check_size(value: Any, what: str) -> Any:
    """The result of an operator, filter or call: bounded text, collection and integer."""
    if isinstance(value, str):
        check_string(len(value), what)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        check_bits(value.bit_length(), what)
    elif isinstance(value, list | tuple | dict | set | frozenset | range):
        check_items(len(value), what)
    return value


_SCALARS = frozenset({int, float, bool, type(None)})


def weight(value: Any, bound: int) -> int:
    """Characters of text plus items in ``value``, walking nested lists and maps (shared items
    count each time they appear, as when printed); stops counting once past ``bound``."""
    total = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            total += len(item) + 1
            continue
        if kind in _SCALARS:
            total += 1
            continue
        if kind is dict:
            total += len(item) + 1
            extend(item.keys())
            extend(item.values())
        elif kind is list or kind is tuple:
            total += len(item) + 1
            extend(item)
        elif isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, Mapping):
            total += len(item) + 1
            extend(item.keys())
            extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 1
            extend(item)
        else:
            total += 1
        if total > bound:
            break
    return total


def fail_weight(what: str) -> NoReturn:
    limit = limits().template_max_string
    raise TemplateLimitError(
        f"{what} would be more than {limit:,} characters long as text "
        f"({_var('template_max_string')})"
    )


def check_weight(value: Any, what: str) -> None:
    """Refuse to print or serialise ``value`` when its text would be over the string limit."""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        limit = limits().template_max_string
        if weight(value, limit) > limit:
            fail_weight(what)


# -- the time budget ---------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "plait_template_deadline", default=None
)


class budget:  # lower case: used like a function, ``with budget():``
    """A time budget for the renders inside this block; an enclosing budget is kept."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        if _deadline.get() is None:
            self._token: contextvars.Token[float | None] | None = _deadline.set(
                time.monotonic() + limits().template_render_seconds
            )
        else:
            self._token = None

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _deadline.reset(self._token)


def enter_budget() -> contextvars.Token[float | None] | None:
    """``budget().__enter__`` without the object (the engine's hot path)."""
    if _deadline.get() is not None:
        return None
    return _deadline.set(time.monotonic() + limits().template_render_seconds)


def exit_budget(token: contextvars.Token[float | None] | None) -> None:
    if token is not None:
        _deadline.reset(token)


def check_time() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        seconds = limits().template_render_seconds
        raise TemplateLimitError(
            f"the template took more than {seconds:g} s to render "
            f"({_var('template_render_seconds')})"
        )


def guard_loop(iterable: Any) -> Any:
    """A ``{% for %}`` loop's items, checking the time budget as it goes."""
    if hasattr(iterable, "__aiter__"):
        return _guard_async(iterable)
    if isinstance(iterable, list | tuple | dict | str | range) and len(iterable) < 64:
        return iterable  # too short to matter: no generator for the common small loop
    return _guard_sync(iterable)


def _guard_sync(iterable: Iterable[Any]) -> Iterator[Any]:
    for count, item in enumerate(iterable, 1):
        if not count & 63:
            check_time()
        yield item


async def _guard_async(iterable: Any) -> AsyncIterator[Any]:
    count = 0
    async for item in iterable:
        count += 1
        if not count & 63:
            check_time()
        yield item


class Buffer(list[str]):
    """The output buffer of a macro, ``{% set %}`` block, call or filter block: bounded."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def append(self, piece: str) -> None:
        self.size += len(piece)
        check_string(self.size, "the output")
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.append(piece)


def str_join(parts: Iterable[Any]) -> str:
    """``a ~ b``: the joined text, refused before it is built when too long."""
    texts = [str(part) for part in parts]
    check_string(sum(map(len, texts)), "the text joined with '~'")
    return "".join(texts)


# -- operators --------------------------------------------------------------------------------

#: Operators the sandbox intercepts (see :func:`binop`).
BINOPS = frozenset({"+", "*", "**", "%"})

_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def binop(operator: str, left: Any, right: Any) -> Any:
    """``left operator right`` once its result is known to fit the limits."""
    if operator == "*":
        return _multiply(left, right)
    if operator == "**":
        return _power(left, right)
    if operator == "+":
        if isinstance(left, str) and isinstance(right, str):
            check_string(len(left) + len(right))
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            check_items(len(left) + len(right))
            limit = limits().template_max_string
            if weight(left, limit) + weight(right, limit) > limit:
                fail_weight("the joined lists")
        return left + right
    if operator == "%":
        if isinstance(left, str):
            check_format(left, right if isinstance(right, tuple) else (right,))
            return check_size(left % right, "the formatted text")
        return left % right
    raise AssertionError(operator)


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        check_bits(bits - 1, "the product")
        return check_size(left * right, "the product")
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(times, int) and not isinstance(times, bool) and times > 1:
        if isinstance(sequence, str):
            check_string(len(sequence) * times, "the repeated text")
        elif isinstance(sequence, list | tuple):
            check_items(len(sequence) * times, "the repeated list")
            limit = limits().template_max_string
            if weight(sequence, limit) * times > limit:
                fail_weight("the repeated list")
    return left * right


def _power(base: Any, exponent: Any) -> Any:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and not isinstance(exponent, bool)
        and exponent > 0
        and abs(base) > 1
    ):
        # Known before computing: the result has about exponent * log2(|base|) bits.
        estimate = exponent * math.log2(abs(base))
        if estimate > limits().template_max_int_bits + 2:
            check_bits(math.floor(estimate) + 1, f"{base} ** {exponent}")
        return check_size(base**exponent, f"{base} ** {exponent}")
    return check_size(base**exponent, "the power")


def check_format(template: str, args: Any) -> None:
    """``text % args`` and ``format``: refuse widths and precisions past the string limit."""
    limit = limits().template_max_string
    values = list(args.values()) if isinstance(args, Mapping) else list(args)
    for match in _PERCENT.finditer(template):
        for part in match.groups():
            if part is None:
                continue
            if part == "*":
                big = [v for v in values if isinstance(v, int) and abs(v) > limit]
                if big:
                    check_string(abs(big[0]), "the formatted text")
            elif len(part) > 9 or int(part) > limit:
                check_string(int(part[:12]), "the formatted text")


_BRACE_SPEC = re.compile(r"\{[^{}]*(\{[^{}]*\}[^{}]*)*\}")
_DIGITS = re.compile(r"\d+")


def check_brace_format(template: str, args: Iterable[Any]) -> None:
    """``'{:>100}'.format(x)``: refuse widths past the string limit, literal or nested."""
    limit = limits().template_max_string
    for match in _BRACE_SPEC.finditer(template):
        field = match.group(0)
        if ":" not in field:
            continue
        spec = field.split(":", 1)[1]
        for digits in _DIGITS.findall(spec):
            if len(digits) > 9 or int(digits) > limit:
                check_string(int(digits[:12]), "the formatted text")
        if "{" in spec:
            for value in args:
                if isinstance(value, int) and abs(value) > limit:
                    check_string(abs(value), "the formatted text")


# -- calls: string methods ----------------------------------------------------------------------


def _width_check(index: int) -> Callable[[str, tuple[Any, ...], dict[str, Any]], None]:
    def check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        width = args[index] if len(args) > index else None
        if isinstance(width, int):
            check_string(width, "the padded text")

    return check


def _replace_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)


def check_replace(text: str, old: str, new: str, count: Any = -1) -> None:
    grow = len(new) - len(old)
    if grow <= 0 or (not text and old):
        return
    found = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    check_string(len(text) + found * grow, "the replaced text")


def _expandtabs_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if isinstance(size, int) and size > 1:
        check_string(len(text) + text.count("\t") * size, "the text with tabs expanded")


def _join_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    items = args[0] if args else None
    if isinstance(items, list | tuple):
        check_items(len(items))
        size = len(text) * max(len(items) - 1, 0)
        size += sum(len(i) for i in items if isinstance(i, str))
        check_string(size, "the joined text")


def _split_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sep = args[0] if args else kwargs.get("sep")
    if isinstance(sep, str) and sep:
        check_items(text.count(sep) + 1, "the split text")
    elif len(text) > limits().template_max_items:
        check_items(len(text.split()), "the split text")


def _splitlines_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    check_items(text.count("\n") + text.count("\r") + 1, "the lines")


def _translate_check(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    table = args[0] if args else None
    if isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        if longest > 1:
            check_string(len(text) * longest, "the translated text")


_STR_METHODS: dict[str, Callable[[str, tuple[Any, ...], dict[str, Any]], None]] = {
    "ljust": _width_check(0),
    "rjust": _width_check(0),
    "center": _width_check(0),
    "zfill": _width_check(0),
    "expandtabs": _expandtabs_check,
    "replace": _replace_check,
    "join": _join_check,
    "split": _split_check,
    "rsplit": _split_check,
    "splitlines": _splitlines_check,
    "translate": _translate_check,
}


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Before a call from a template: the time budget, and the size of what a string method
    would build."""
    check_time()
    kind = type(obj)
    if kind is FunctionType:  # the sandbox's wrapper of str.format keeps the method
        target = obj.__dict__.get("__wrapped__")
        if type(target) is not BuiltinMethodType:
            return
    elif kind is BuiltinMethodType:
        target = obj
    else:
        return
    owner = target.__self__
    if isinstance(owner, str):
        name = getattr(target, "__name__", "")
        check = _STR_METHODS.get(name)
        if check is not None:
            check(owner, args, kwargs)
        elif name in ("format", "format_map"):
            values = [*args, *kwargs.values()]
            if name == "format_map" and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            check_brace_format(owner, values)


# -- filters ----------------------------------------------------------------------------------


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _pre_center(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width")
    if isinstance(width, int):
        check_string(width, "the centered text")


def _pre_indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    amount = _arg(args, kwargs, 0, "amount")
    prefix = _arg(args, kwargs, 1, "prefix")
    if isinstance(amount, int) and not isinstance(value, Mapping | list | tuple):
        text = str(value)
        pad = amount * (len(prefix) if isinstance(prefix, str) else 1)
        check_string(pad, "the indentation")
        lines = text.count("\n") + text.count("\r") + 1
        check_string(len(text) + lines * pad, "the indented text")


def _pre_replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old = _arg(args, kwargs, 0, "old")
    new = _arg(args, kwargs, 1, "new")
    if isinstance(old, Mapping):
        return  # the map form: checked as it is applied (plait.templating._kestra_filters)
    if isinstance(value, str) and old is not None and new is not None:
        count = _arg(args, kwargs, 2, "count")
        check_replace(value, str(old), str(new), -1 if count is None else count)


def _pre_format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if isinstance(value, str):
        check_format(value, kwargs or args)


def _pre_wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    wrap = _arg(args, kwargs, 2, "wrapstring")
    if isinstance(wrap, str) and len(wrap) > 1:
        width = _arg(args, kwargs, 0, "width")
        width = width if isinstance(width, int) and width > 0 else 1
        text = str(value)
        check_string(len(text) + (len(text) // width + 1) * len(wrap), "the wrapped text")


def _pre_batch(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    _pre_items(value, args, kwargs)
    count = _arg(args, kwargs, 0, "linecount" if "linecount" in kwargs else "slices")
    if isinstance(count, int):
        check_items(count, "the batches")


def _pre_items(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A filter that makes a list of the characters of a text."""
    if isinstance(value, str):
        check_items(len(value), "the list of characters")


def _pre_join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if isinstance(value, list | tuple):
        check_items(len(value))
        sep = _arg(args, kwargs, 0, "d")
        limit = limits().template_max_string
        size = (len(sep) if isinstance(sep, str) else 0) * max(len(value) - 1, 0)
        for item in value:
            size += len(item) if isinstance(item, str) else weight(item, limit)
            if size > limit:
                check_string(size, "the joined text")


def _pre_sum(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    start = _arg(args, kwargs, 1, "start")
    if isinstance(value, list | tuple) and isinstance(start, list | tuple | str):
        check_items(len(start) + sum(len(v) for v in value if isinstance(v, list | tuple | str)))
        limit = limits().template_max_string
        if weight(value, limit) > limit:
            fail_weight("the sum")
    else:
        _pre_items(value, args, kwargs)


def _pre_serialise(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    check_weight(value, "the value as text")


def _pre_truncate(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    end = _arg(args, kwargs, 2, "end")
    if isinstance(end, str):
        check_string(len(end))


Precheck = Callable[[Any, tuple[Any, ...], dict[str, Any]], None]

#: Filters whose result can be much larger than their input: checked before they run.
PRECHECKS: dict[str, Precheck] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "nindent": _pre_indent,
    "replace": _pre_replace,
    "format": _pre_format,
    "wordwrap": _pre_wordwrap,
    "batch": _pre_batch,
    "slice": _pre_batch,
    "list": _pre_items,
    "sort": _pre_items,
    "unique": _pre_items,
    "map": _pre_items,
    "select": _pre_items,
    "reject": _pre_items,
    "groupby": _pre_items,
    "chunk": _pre_items,
    "uniq": _pre_items,
    "sum": _pre_sum,
    "join": _pre_join,
    "truncate": _pre_truncate,
    "json": _pre_serialise,
    "toJson": _pre_serialise,
    "tojson": _pre_serialise,
    "string": _pre_serialise,
    "yaml": _pre_serialise,
    "pprint": _pre_serialise,
    "jq": _pre_serialise,
    "urlencode": _pre_serialise,
    "xmlattr": _pre_serialise,
    "escapeChar": _pre_serialise,
}


#: Filters whose result is never much larger than their input: left unwrapped (no overhead).
UNCHECKED = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "e", "escape", "first", "float",
        "forceescape", "int", "last", "length", "lower", "max", "min", "random", "reverse",
        "round", "safe", "striptags", "title", "trim", "upper", "wordcount", "filesizeformat",
        "startsWith", "endsWith", "keys", "values", "date", "dateAdd", "timestamp", "slugify",
        "abbreviate", "number", "className", "md5", "sha1", "sha256", "sha512", "base64decode",
        "urldecode", "timestampMilli", "timestampMicro", "timestampNano", "substringBefore",
        "substringAfter", "substringBeforeLast", "substringAfterLast", "fromJson",
    }
)  # fmt: skip


def guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its precheck (if any) and a check of its result's size. (The time budget is
    checked by loops and calls: a chain of filters outside them is as long as the template.)"""
    pass_arg = getattr(fn, "jinja_pass_arg", None)
    skip = 0 if pass_arg is None else 1
    precheck = PRECHECKS.get(name)
    what = f"the result of '{name}'"
    if name in UNCHECKED and precheck is None:
        return fn

    wrapper: Callable[..., Any]
    maybe_async = getattr(fn, "jinja_async_variant", False) is True
    if inspect.iscoroutinefunction(fn):
        # Stays a coroutine function, so that Jinja never calls it while compiling.

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if precheck is not None and len(args) > skip:
                precheck(args[skip], args[skip + 1 :], kwargs)
            return check_size(await fn(*args, **kwargs), what)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if precheck is not None and len(args) > skip:
                precheck(args[skip], args[skip + 1 :], kwargs)
            result = fn(*args, **kwargs)
            if maybe_async and inspect.isawaitable(result):
                return await_checked(result, what)
            return check_size(result, what)

    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    wrapper.plait_guarded = True  # type: ignore[attr-defined]
    return wrapper


async def await_checked(result: Any, what: str) -> Any:
    return check_size(await result, what)


def guard_function(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A template function (``range``, a plugin's): its result's size is checked after the call
    (the sandbox's call hook checks the time budget before it)."""
    if getattr(fn, "plait_guarded", False) or not callable(fn):
        return fn
    what = f"the result of '{name}()'"
    pass_arg = getattr(fn, "jinja_pass_arg", None)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await_checked(result, what)
        return check_size(result, what)

    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    wrapper.plait_guarded = True  # type: ignore[attr-defined]
    return wrapper


def bounded_range(*args: int) -> range:
    """``range()`` as Pebble's: ``range(start, end[, step])`` includes ``end`` (``range(1, 3)``
    is 1, 2, 3; ``range(5, 1, -2)`` is 5, 3, 1), a step of 0 is refused. ``range(n)``, which
    Pebble lacks, is Jinja's: the ``n`` numbers from 0. Refused past ``template_max_items``."""
    if len(args) == 1:
        numbers = range(args[0])
    elif len(args) in (2, 3):
        start, end, step = (*args, 1) if len(args) == 2 else args
        if step == 0:
            raise TemplateRenderError("range(): the step must not be 0")
        # Pebble's range includes its end: one past it, in the step's direction.
        numbers = range(start, end + (1 if step > 0 else -1), step)
    else:
        raise TemplateRenderError(
            f"range() takes (start, end) or (start, end, step), got {len(args)} arguments"
        )
    check_items(len(numbers), "the range")
    return numbers


# -- regular expressions ----------------------------------------------------------------------


def regex_timeout() -> float:
    return limits().template_regex_seconds


def regex_timed_out(name: str) -> TemplateLimitError:
    seconds = limits().template_regex_seconds
    return TemplateLimitError(
        f"{name}: the regular expression took more than {seconds:g} s "
        f"({_var('template_regex_seconds')}); simplify it (nested repetition such as "
        "'(a+)+' can take exponential time)"
    )
