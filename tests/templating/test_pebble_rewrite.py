"""Pebble forms: malformed ``? :`` / ``??``, lazy operands, whitespace control in native
rendering, and error messages that name the real problem."""

import asyncio
from typing import Any

import pytest
from plait.templating import TemplateEngine, TemplateRenderError, TemplateSyntaxError

CTX: dict[str, Any] = {
    "inputs": {"name": "Ada", "n": 3, "flag": True, "items": [1, 2, 3]},
    "outputs": {"t": {"code": 200}},
}


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def native(engine: TemplateEngine, source: str, ctx: dict[str, Any] | None = None) -> Any:
    return asyncio.run(engine.render_native(source, CTX if ctx is None else ctx))


def text(engine: TemplateEngine, source: str, ctx: dict[str, Any] | None = None) -> str:
    return asyncio.run(engine.render(source, CTX if ctx is None else ctx))


def counting_engine() -> tuple[TemplateEngine, list[str]]:
    """An engine with ``f(x)`` (returns x) and ``secret(x)`` (async), both recording calls."""
    calls: list[str] = []

    def f(value: Any) -> Any:
        calls.append(f"f:{value}")
        return value

    async def secret(name: str) -> str:
        calls.append(f"secret:{name}")
        return f"value-of-{name}"

    local = TemplateEngine()
    local.add_function("f", f)
    local.add_function("secret", secret)
    return local, calls


# -- 1. malformed ternary / coalesce, and the elvis form -------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ inputs.flag ?: 'b' }}", r"'\?:' is not supported"),
        ("{{ inputs.flag ? : 'b' }}", r"'\?:' is not supported"),
        ("{{ [inputs.flag ?: 'b'] }}", r"'\?:' is not supported"),
        ("{{ inputs.n ?? }}", r"'\?\?' needs a value on its right"),
        ("{{ (inputs.n ?? ) + 1 }}", r"'\?\?' needs a value on its right"),
        ("{{ [inputs.n ??, 1] }}", r"'\?\?' needs a value on its right"),
        ("{{ a ?? b ?? }}", r"'\?\?' needs a value on its right"),
        ("{{ ?? inputs.n }}", r"'\?\?' needs a value on its left"),
        ("{{ a ?? ?? b }}", r"'\?\?' needs a value on its right"),
        ("{% set x = ?? 1 %}", r"'\?\?' needs a value on its left"),
        ("{{ a ??? }}", r"'\?\?\?' needs a value on its right"),
        ("{{ ? 'a' : 'b' }}", r"needs a condition before '\?'"),
        ("{{ inputs.flag ? 'a' : }}", r"needs a value after ':'"),
        ("{{ inputs.flag ? 'a' }}", r"'\?' without its ':'"),
        ("{% if inputs.flag ? 1 %}{% endif %}", r"'\?' without its ':'"),
    ],
)
def test_malformed_ternary_and_coalesce_are_syntax_errors(
    engine: TemplateEngine, source: str, message: str
) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        engine.check(source)
    with pytest.raises(TemplateSyntaxError, match=message):
        native(engine, source)
    with pytest.raises(TemplateSyntaxError, match=message):
        text(engine, source)


def test_rewrite_syntax_errors_carry_the_template_line(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        engine.check("one\ntwo {{ a }}\n{{ x\n  ?? }}")
    assert caught.value.line == 4
    assert caught.value.expression == "?? }}"


def test_well_formed_forms_still_pass_the_check(engine: TemplateEngine) -> None:
    for source in (
        "{{ a ? b : c }}",
        "{{ a ?? b ?? c }}",
        "{{ {'k': a ? 1 : 2} }}",
        "{{ 'a ?: b' ~ '??' }}",
        "{# a ?: b #}",
        "{% raw %}{{ a ?? }}{% endraw %}",
    ):
        engine.check(source)


# -- 2. only the needed operand is evaluated -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.name ?? (1 / 0) }}", "Ada"),
        ("{{ inputs.name ?? nope.deeper | upper }}", "Ada"),
        ("{{ nope ?? inputs.name ?? (1 / 0) }}", "Ada"),
        ("{{ none ?? nope ?? 'third' }}", "third"),
        ("{{ (nope ?? 1) + 1 }}", "2"),
        ("{{ nope ?? 1 ? 'yes' : 'no' }}", "yes"),
        ("{{ 0 ?? 'x' }}|{{ false ?? 'x' }}|{{ '' ?? 'x' }}", "0|false|"),
        ("{% for i in [1, 2] %}{{ nope ?? i }}{% endfor %}", "12"),
        ("{% for x in (nope ?? [1, 2, 3]) if (x ?? 0) > 1 %}{{ x }}{% endfor %}", "23"),
        ("{% macro m(v) %}{{ v ?? 'd' }}{% endmacro %}{{ m(none) }}{{ m(1) }}", "d1"),
        ("{% set v = inputs.n ?? (1 / 0) %}{{ v }}", "3"),
    ],
)
def test_coalesce_fallback_is_evaluated_only_when_needed(
    engine: TemplateEngine, source: str, expected: str
) -> None:
    assert text(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.n ?? (1 / 0) }}", 3),
        ("{{ nope ?? [1, 2] }}", [1, 2]),
        ("{{ outputs.t.code ?? 0 }}", 200),
        ("{{ 0 ?? 'x' }}", 0),
        ("{{ none ?? none }}", None),
    ],
)
def test_coalesce_keeps_native_types(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ nope ??? 'x' }}", "x"),  # undefined: the fallback
        ("{{ none ??? 'x' }}", None),  # null is kept (Pebble's undefined-coalescing)
        ("{{ none ?? 'x' }}", "x"),  # while ?? replaces it
        ("{{ inputs.n ??? (1 / 0) }}", 3),  # the fallback only when needed
        ("{{ nope ??? none ?? 'y' }}", "y"),
        ("{{ nope.deeper ??? [1] }}", [1]),
    ],
)
def test_undefined_coalescing(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


async def test_coalesce_reads_a_secret_only_when_the_left_side_is_missing() -> None:
    local, calls = counting_engine()
    assert await local.render("{{ inputs.name ?? secret('N') }}", CTX) == "Ada"
    assert calls == []
    assert await local.render_native("{{ inputs.nope ?? secret('N') }}", CTX) == "value-of-N"
    assert calls == ["secret:N"]


async def test_coalesce_evaluates_its_left_side_once() -> None:
    local, calls = counting_engine()
    assert await local.render_native("{{ f('a') ?? f('b') }}", {}) == "a"
    assert calls == ["f:a"]
    calls.clear()
    assert await local.render_native("{{ f(none) ?? f(none) ?? f('c') }}", {}) == "c"
    assert calls == ["f:None", "f:None", "f:c"]


async def test_ternary_evaluates_only_the_chosen_branch() -> None:
    local, calls = counting_engine()
    assert await local.render_native("{{ inputs.flag ? f('a') : f('b') }}", CTX) == "a"
    assert calls == ["f:a"]
    calls.clear()
    assert await local.render("{{ not inputs.flag ? secret('X') : f('b') }}", CTX) == "b"
    assert calls == ["f:b"]
    assert await local.render("{{ inputs.flag ? 'ok' : (1 / 0) }}", CTX) == "ok"


def test_coalesce_still_rejects_unknown_filters_in_the_fallback(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateSyntaxError, match="No filter named 'nofilter'"):
        engine.check("{{ a ?? (b | nofilter) }}")


# -- 3. whitespace control in native rendering -----------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{- inputs.n + 1 -}}", 4),
        ("{{- inputs.n + 1 }}", 4),
        ("{{ inputs.n + 1 -}}", 4),
        ("  {{- inputs.items | length -}}  ", 3),
        ("{{- {'a': inputs.n} -}}", {"a": 3}),
        ("{{- inputs.n - -1 -}}", 4),
        ("{{- nope ?? 'x' -}}", "x"),
        ("{{- inputs.flag ? 1 : 2 -}}", 1),
    ],
)
def test_whitespace_control_works_in_native_rendering(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    engine.check(source)
    assert native(engine, source) == expected


# -- 4. messages that name the real problem --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ kv('x') }}", "unknown function 'kv'"),
        ("x {{ kv('x') | upper }} y", "unknown function 'kv'"),
        ("{{ nope.fn(1) }}", "'nope.fn' is undefined"),
        ("{{ inputs.nope(1) }}", "'nope' is undefined"),
        ("{{ inputs.name.uper() }}", "'str' object has no method 'uper'"),
        ("{{ inputs.when | date('yyyy') }}", "'when' is undefined"),
        ("{{ nope | date }}", "'nope' is undefined"),
        ("{{ nope.x | dateAdd(1, 'DAYS') }}", "'nope.x' is undefined"),
        ("{{ nope | dateAdd(1, 'MONTHS') }}", "'nope' is undefined"),
        ("{{ nope | timestamp }}", "'nope' is undefined"),
        ("{{ nope | keys }}", "'nope' is undefined"),
        ("{{ nope | values }}", "'nope' is undefined"),
    ],
)
def test_errors_name_the_real_problem(engine: TemplateEngine, source: str, message: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        native(engine, source)
    assert caught.value.message == message


def test_unsafe_method_calls_keep_the_sandbox_message(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateRenderError, match="not allowed: access to attribute 'pop'"):
        native(engine, "{{ inputs.items.pop() }}", {"inputs": {"items": [1]}})
