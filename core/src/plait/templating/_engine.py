"""The one template renderer: a sandboxed, async Jinja2 environment with Pebble's forms."""

from __future__ import annotations

import inspect
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import jinja2
from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from plait.limits import limits
from plait.templating import _filters as f
from plait.templating import _kestra_filters as k
from plait.templating import _limits as lim
from plait.templating._errors import TemplateRenderError, TemplateSyntaxError
from plait.templating._limits import TemplateLimitError
from plait.templating._pebble import translate
from plait.templating._taint import touch, touch_text, tracked
from plait.templating._undefined import PlaitUndefined

_MARKERS = ("{{", "{%", "{#")
#: A lone ``{{ expression }}``, whitespace-control markers (``{{-``, ``-}}``) outside the group.
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{-?(?!.*\{\{)(.*?)-?\}\}\s*$", re.DOTALL)
#: ``{{ a.b['c-d'].e }}``: resolved without Jinja (the most common template by far).
_PATH = re.compile(
    r"^\s*\{\{-?\s*([A-Za-z][\w]*(?:\.[A-Za-z][\w]*|\['[^'\\]*'\]|\[\d+\])*)\s*-?\}\}\s*$"
)
_PATH_PART = re.compile(r"\.([A-Za-z][\w]*)|\['([^'\\]*)'\]|\[(\d+)\]")
_MISSING = object()
_COALESCE = "plait_coalesce"
_UNDEFINED_COALESCE = "plait_undefined_coalesce"
_LOOP = "plait_loop"
CACHE_SIZE = 4096


def is_template(value: str) -> bool:
    """True when ``value`` holds template syntax (the fast path skips Jinja otherwise)."""
    return "{" in value and any(m in value for m in _MARKERS)


def finalize(value: Any) -> Any:
    """Print values as Kestra does: ``true``/``false``, compact JSON, ISO dates, no ``None``."""
    touch(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return repr(value)
        return repr(value)
    if isinstance(value, dict | list | tuple):
        if lim.weight(value, most := limits().template_max_string) > most:
            lim.fail_weight("the value as text")
        return f.to_json(value)
    if isinstance(value, datetime):
        return f.format_datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f.format_duration(value)
    return value


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, compiling ``a ?? b`` lazily.

    The Pebble rewrite turns ``a ?? b`` into ``((a) | plait_coalesce(b))``. As a filter call,
    both operands would be evaluated first; here it becomes the Python expression
    ``(t if not ((t := a) is None or isinstance(t, Undefined)) else b)``, so ``a`` is evaluated
    once and ``b`` only when ``a`` is undefined or null (as in Pebble).
    """

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:
        if (
            node.name not in (_COALESCE, _UNDEFINED_COALESCE)
            or node.node is None
            or len(node.args) != 1
            or node.kwargs
            or node.dyn_args is not None
            or node.dyn_kwargs is not None
        ):
            super().visit_Filter(node, frame)
            return
        value = self.temporary_identifier()
        if node.name == _COALESCE:
            self.write(f"({value} if not (({value} := ")
            self.visit(node.node, frame)
            self.write(f") is None or isinstance({value}, Undefined)) else ")
        else:  # ``a ??? b`` (Pebble): only an undefined ``a`` is replaced, a null one is kept
            self.write(f"({value} if not isinstance(({value} := ")
            self.visit(node.node, frame)
            self.write(") , Undefined) else ")
        self.visit(node.args[0], frame)
        self.write(")")

    # The sandbox's limits (plait.templating._limits): every output buffer and ``~`` check
    # their size (and loops their time, see _Environment._parse).

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.plait_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)
            return
        self.write("environment.plait_str_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox: no mutation of the context, no underscore attributes, no unsafe callables,
    and no loader (so no include, import or extends)."""

    plait_engine: TemplateEngine | None = None
    code_generator_class = _CodeGenerator
    # Operators go through call_binop, which notes a sensitive operand (plait.templating._taint)
    # and bounds what the growing ones (lim.BINOPS) may build.
    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"]) | lim.BINOPS
    plait_buffer = lim.Buffer
    plait_str_join = staticmethod(lim.str_join)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, PlaitUndefined):
            obj.fail_call()  # "unknown function 'kv'" rather than an error about its attributes
        touch(*args, *kwargs.values())
        if type(obj) is _Sink:
            return obj(*args)  # the engine's own receiver of a native value: checks it itself
        lim.check_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if not isinstance(result, str | int | float | list | dict) and inspect.isawaitable(result):
            return lim.await_checked(result, "the result of the call")
        return lim.check_size(result, "the result of the call")

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every loop's items pass through ``plait_loop``, which checks the time budget.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, _LOOP, [], [], None, None, lineno=loop.iter.lineno
            ).set_environment(self)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        touch(left, right)
        lim.check_time()
        if operator in lim.BINOPS:
            return lim.binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A map's keys win over its methods (``inputs.items`` is the input named "items"),
        # as in Pebble; methods stay reachable when no such key exists.
        if isinstance(obj, dict) and attribute in obj:
            found = obj[attribute]
        else:
            found = super().getattr(obj, attribute)
        touch_text(obj, found)
        return found

    def getitem(self, obj: Any, argument: Any) -> Any:
        found = super().getitem(obj, argument)
        touch_text(obj, found)
        return found

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_"):
            return False
        return super().is_safe_attribute(obj, attr, value)


class _Sink:
    """Receives the native value of a lone expression (``{{ expr }}``)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None

    def __call__(self, value: Any) -> str:
        if isinstance(value, jinja2.Undefined):
            str(value)  # raises, naming the undefined path
        touch(value)
        lim.check_size(value, "the value")
        lim.check_weight(value, "the value")
        self.value = value
        return ""


@pass_context
async def _render_function(context: Context, source: Any) -> Any:
    # The engine hangs off the environment, which no template can reach (a global could be).
    engine = getattr(context.environment, "plait_engine", None)
    assert isinstance(engine, TemplateEngine)
    if not isinstance(source, str):
        return source
    return await engine.render_native(source, context.get_all())


class TemplateEngine:
    """Renders templates in a sandbox; one per process, cached compiled templates.

    Example::

        engine = TemplateEngine()
        await engine.render("Hello {{ inputs.name }}", {"inputs": {"name": "Ada"}})
        await engine.render_native("{{ [1, 2] }}", {})   # -> [1, 2]
    """

    def __init__(self) -> None:
        self.env = _Environment(
            undefined=PlaitUndefined,
            enable_async=True,
            autoescape=False,
            finalize=finalize,
            keep_trailing_newline=True,
            loader=None,
            extensions=[],
            optimized=False,  # no constant folding when parsing: '{{ "a" * 10**9 }}' stays lazy
        )
        self.env.plait_engine = self
        self.env.globals.clear()
        self.env.globals.update(
            {
                "now": f.now,
                "range": lim.bounded_range,  # capped at template_max_items
                "json": f.from_json,
                "fromJson": f.from_json,
                "render": _render_function,
                "yaml": k.from_yaml,
                "uuid": k.uuid,
            }
        )
        self.env.filters.update(
            {
                "json": f.to_json,
                "toJson": f.to_json,
                "fromJson": f.from_json,
                _COALESCE: f.coalesce,  # compiled lazily by _CodeGenerator
                _UNDEFINED_COALESCE: f.undefined_coalesce,  # likewise
                "date": f.format_date,
                "dateAdd": f.date_add,
                "timestamp": f.timestamp,
                "slugify": f.slugify,
                "abbreviate": f.abbreviate,
                "keys": f.keys,
                "values": f.values,
                "startsWith": f.starts_with,
                "endsWith": f.ends_with,
                # Kestra's and Pebble's filters (plait.templating._kestra_filters)
                "jq": k.jq_filter,
                "yaml": k.to_yaml,
                "number": k.number,
                "className": k.class_name,
                "string": k.to_string,  # replaces Jinja's: prints the Kestra way
                "split": k.split,
                "substringBefore": k.substring_before,
                "substringAfter": k.substring_after,
                "substringBeforeLast": k.substring_before_last,
                "substringAfterLast": k.substring_after_last,
                "replace": k.replace,  # Pebble's map form, and Jinja's (old, new[, count])
                "regexMatch": k.regex_match,
                "regexReplace": k.regex_replace,
                "regexExtract": k.regex_extract,
                "escapeChar": k.escape_char,
                "indent": k.indent,  # replaces Jinja's: Kestra's (amount, prefix)
                "nindent": k.nindent,
                "base64encode": k.base64_encode,
                "base64decode": k.base64_decode,
                "md5": k.md5,
                "sha1": k.sha1,
                "sha256": k.sha256,
                "sha512": k.sha512,
                "urlencode": k.url_encode,  # replaces Jinja's for text: Java's URLEncoder
                "urldecode": k.url_decode,
                "chunk": k.chunk,
                "distinct": k.distinct,
                "uniq": k.uniq,
                "flatten": k.flatten,
                "merge": k.merge,
                "rsort": k.rsort,
                "timestampMilli": k.timestamp_milli,
                "timestampMicro": k.timestamp_micro,
                "timestampNano": k.timestamp_nano,
            }
        )
        for name, fn in list(self.env.filters.items()):
            if name not in (_COALESCE, _UNDEFINED_COALESCE):
                self.env.filters[name] = lim.guard_filter(name, fn)
        self.env.filters[_LOOP] = lim.guard_loop
        self.env.tests.update(
            {
                "json": f.is_json,
                "empty": f.is_empty,
                "null": lambda v: v is None,
                "startsWith": f.starts_with,
                "endsWith": f.ends_with,
            }
        )
        # Every filter and test notes a sensitive argument (plait.templating._taint).
        self.env.filters = {name: tracked(fn) for name, fn in self.env.filters.items()}
        self.env.tests = {name: tracked(test) for name, test in self.env.tests.items()}
        self._cache: OrderedDict[str, jinja2.Template] = OrderedDict()

    # -- extension ---------------------------------------------------------------------------

    def add_function(self, name: str, fn: Callable[..., Any]) -> None:
        self.env.globals[name] = fn

    def add_filter(self, name: str, fn: Callable[..., Any]) -> None:
        self.env.filters[name] = tracked(lim.guard_filter(name, fn))

    def add_test(self, name: str, fn: Callable[..., Any]) -> None:
        self.env.tests[name] = tracked(fn)

    # -- compile -----------------------------------------------------------------------------

    def _compile(self, source: str) -> jinja2.Template:
        template = self._cache.get(source)
        if template is not None:
            self._cache.move_to_end(source)
            return template
        try:
            translated = translate(source)
            _check_forbidden_tags(self.env, translated)
            template = self.env.from_string(translated)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateSyntaxError(
                _syntax_reason(error), line=error.lineno, expression=_excerpt(source, error.lineno)
            ) from None
        except RecursionError:
            # '((((...))))' or '1 + 1 + ...' thousands deep: the parser and compiler recurse
            raise TemplateSyntaxError(
                "the template is nested too deeply", expression=_excerpt(source, 1)
            ) from None
        self._cache[source] = template
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return template

    def check(self, source: str) -> None:
        """Raise :class:`TemplateSyntaxError` when ``source`` does not parse."""
        if is_template(source):
            self._compile(source)

    # -- render ------------------------------------------------------------------------------

    budget = staticmethod(lim.budget)
    """``with engine.budget():`` makes the renders inside the block share one time budget
    (``template_render_seconds``), as the engine does for all the strings of one property."""

    async def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render to a string."""
        if not is_template(source):
            return source
        template = self._compile(source)
        budget = lim.enter_budget()
        try:
            return await _render_async(template, context)
        except Exception as error:
            raise _render_error(error, source) from None
        finally:
            lim.exit_budget(budget)

    async def render_native(self, source: str, context: Mapping[str, Any]) -> Any:
        """Render, keeping the native type when ``source`` is a single ``{{ expression }}``."""
        if not is_template(source):
            return source
        path = _PATH.match(source)
        if path is not None:
            value = _lookup(path.group(1), context)
            if value is not _MISSING:
                touch(value)
                return value
        match = _SINGLE_EXPRESSION.match(source)
        if match is None or "}}" in match.group(1):
            return await self.render(source, context)
        sink = _Sink()
        template = self._compile_native(source, match.group(1))
        budget = lim.enter_budget()
        try:
            await _render_async(template, {**context, "__plait_sink__": sink})
        except Exception as error:
            raise _render_error(error, source) from None
        finally:
            lim.exit_budget(budget)
        return sink.value

    def _compile_native(self, source: str, expression: str) -> jinja2.Template:
        key = "\0native\0" + source
        template = self._cache.get(key)
        if template is not None:
            self._cache.move_to_end(key)
            return template
        self._compile(source)  # reports syntax errors against the user's own text
        translated = translate("{{ __plait_sink__((" + expression.strip() + "\n)) }}")
        try:
            template = self.env.from_string(translated)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateSyntaxError(_syntax_reason(error), line=error.lineno) from None
        self._cache[key] = template
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return template

    async def render_value(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside ``value`` (dict keys as strings, values natively)."""
        if isinstance(value, str):
            return await self.render_native(value, context)
        if isinstance(value, dict):
            return {
                (
                    await self.render(k, context) if isinstance(k, str) else k
                ): await self.render_value(v, context)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [await self.render_value(v, context) for v in value]
        if isinstance(value, tuple):
            return tuple([await self.render_value(v, context) for v in value])
        return value


async def _render_async(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """``template.render_async``, with the size of the output checked as it is produced."""
    pieces: list[str] = []
    append = pieces.append
    size = 0
    most = limits().template_max_string
    stream: Any = template.root_render_func(template.new_context(dict(context)))
    try:
        async for piece in stream:
            size += len(piece)
            if size > most:
                lim.check_string(size, "the output")
            append(piece)
    except BaseException:
        await stream.aclose()
        raise
    return "".join(pieces)


def _lookup(path: str, context: Mapping[str, Any]) -> Any:
    """Resolve a plain path through dicts and lists, or ``_MISSING`` to let Jinja decide.

    Only plain containers are walked, so the sandbox's rules cannot be bypassed here; anything
    else (objects, missing keys, functions) goes the slow way for Jinja's own semantics.
    """
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    value: Any = context.get(head, _MISSING)
    if value is _MISSING:
        return _MISSING
    for match in _PATH_PART.finditer(path, len(head)):
        key, quoted, index = match.groups()
        if isinstance(value, dict):
            name = key if key is not None else quoted if quoted is not None else None
            if name is None or name not in value:
                return _MISSING
            value = value[name]
        elif isinstance(value, list) and index is not None and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    if isinstance(value, str | int | float | bool | dict | list) or value is None:
        return value
    return _MISSING


def _check_forbidden_tags(env: jinja2.Environment, source: str) -> None:
    tree = env.parse(source)
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise TemplateSyntaxError(
            f"'{type(node).__name__.lower()}' is not available in templates", line=node.lineno
        )


def _syntax_reason(error: jinja2.TemplateSyntaxError) -> str:
    message = error.message or "invalid template"
    return (
        message.replace("__plait_sink__", "")
        .replace(_UNDEFINED_COALESCE, "???")
        .replace(_COALESCE, "??")
    )


def _excerpt(source: str, line: int | None) -> str:
    lines = source.splitlines() or [source]
    if line is not None and 1 <= line <= len(lines):
        return lines[line - 1].strip()
    return source.strip()


def _render_error(error: Exception, source: str) -> TemplateRenderError:
    if isinstance(error, TemplateLimitError):
        return TemplateLimitError(error.message, line=error.line, expression=source)
    if isinstance(error, TemplateRenderError | TemplateSyntaxError):
        return TemplateRenderError(error.message, line=error.line, expression=source)
    if isinstance(error, SecurityError):
        return TemplateRenderError(f"not allowed: {error}", expression=source)
    if isinstance(error, TemplateNotFound):
        return TemplateRenderError("include and import are not available", expression=source)
    if isinstance(error, UndefinedError):
        return TemplateRenderError(str(error.message), expression=source)
    if isinstance(error, ZeroDivisionError):
        return TemplateRenderError("division by zero", expression=source)
    reason = str(error) or type(error).__name__
    if isinstance(error, TypeError | ValueError | KeyError | IndexError | AttributeError):
        return TemplateRenderError(reason, expression=source)
    # A template function from a plugin (or secret()) raised: keep its message.
    if hasattr(error, "reason"):
        return TemplateRenderError(str(error.reason), expression=source)
    return TemplateRenderError(f"{type(error).__name__}: {reason}", expression=source)
