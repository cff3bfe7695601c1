import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from plait.templating import (
    TemplateEngine,
    TemplateError,
    TemplateRenderError,
    TemplateSyntaxError,
    is_template,
)

CTX: dict[str, Any] = {
    "inputs": {"name": "Ada", "n": 3, "flag": True, "items": [1, 2, 3]},
    "outputs": {"extract-1": {"value": 5, "rows": [{"a": 1}]}, "t": {"code": 200}},
    "vars": {"threshold": 2, "nested": {"k": "v"}},
    "flow": {"id": "hello", "namespace": "demo"},
}


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def native(engine: TemplateEngine, source: str, ctx: dict[str, Any] | None = None) -> Any:
    return asyncio.run(engine.render_native(source, CTX if ctx is None else ctx))


def text(engine: TemplateEngine, source: str) -> str:
    return asyncio.run(engine.render(source, CTX))


def test_plain_strings_take_the_fast_path_and_are_returned_as_is(engine: TemplateEngine) -> None:
    assert not is_template("hello {name} }} {")
    assert native(engine, "hello {name}") == "hello {name}"
    assert engine._cache.get("hello {name}") is None


def test_compiled_templates_are_cached(engine: TemplateEngine) -> None:
    source = "cached {{ inputs.n + 1 }}"
    assert text(engine, source) == "cached 4"
    first = engine._cache[source]
    assert text(engine, source) == "cached 4"
    assert engine._cache[source] is first


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.n }}", 3),
        ("{{ inputs.items }}", [1, 2, 3]),
        ("{{ vars.nested }}", {"k": "v"}),
        ("{{ inputs.flag }}", True),
        ("{{ none }}", None),
        ("{{ inputs.n * 1.5 }}", 4.5),
        ("  {{ inputs.n }}  ", 3),
        ("n={{ inputs.n }}", "n=3"),
        ("{{ inputs.n }}{{ inputs.n }}", "33"),
        ("{{ outputs['extract-1'].rows[0].a }}", 1),
    ],
)
def test_native_rendering_keeps_types_for_a_lone_expression(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.flag }}", "true"),
        ("{{ not inputs.flag }}", "false"),
        ("{{ inputs.items }}", "[1,2,3]"),
        ("{{ vars.nested }}", '{"k":"v"}'),
        ("{{ 1.5 }}|{{ 2.0 }}|{{ 10 / 4 }}", "1.5|2.0|2.5"),
        ("[{{ none }}]", "[]"),
        ("{{ 'é' ~ inputs.n }}", "é3"),
    ],
)
def test_values_print_as_kestra_prints_them(
    engine: TemplateEngine, source: str, expected: str
) -> None:
    assert text(engine, source) == expected


def test_datetimes_print_as_iso_8601_utc(engine: TemplateEngine) -> None:
    ctx = {"d": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "p": timedelta(minutes=90)}
    assert asyncio.run(engine.render("{{ d }} {{ p }}", ctx)) == "2024-01-02T03:04:05Z PT1H30M"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.n > 2 ? 'big' : 'small' }}", "big"),
        ("{{ inputs.n > 5 ? 'big' : 'small' }}", "small"),
        ("{{ inputs.n > 5 ? 'a' : inputs.n > 2 ? 'b' : 'c' }}", "b"),
        ("{{ inputs.flag ? (inputs.n > 1 ? 'x' : 'y') : 'z' }}", "x"),
        ("{{ inputs.flag ? 'has ? and : inside' : 'no' }}", "has ? and : inside"),
        ("{{ {'k': inputs.flag ? 1 : 2}['k'] }}", "1"),
        ("{{ [inputs.flag ? 'a' : 'b', 'c'] | join(',') }}", "a,c"),
        ("{{ inputs.flag ? 'up' : 'down' | upper }}", "up"),
        ("{% set v = inputs.n > 1 ? 'many' : 'one' %}{{ v }}", "many"),
        ("{% if inputs.n > 1 ? true : false %}yes{% endif %}", "yes"),
    ],
)
def test_pebble_ternary(engine: TemplateEngine, source: str, expected: str) -> None:
    assert text(engine, source) == expected


def test_ternary_evaluates_only_the_chosen_branch(engine: TemplateEngine) -> None:
    assert text(engine, "{{ inputs.flag ? 'ok' : undefined_name.x }}") == "ok"
    assert text(engine, "{{ not inputs.flag ? undefined_name : 'ok' }}") == "ok"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ outputs.missing.value ?? 'fallback' }}", "fallback"),
        ("{{ outputs['missing-task'].value ?? 'fb' }}", "fb"),
        ("{{ outputs.t.code ?? 0 }}", "200"),
        ("{{ none ?? 'was null' }}", "was null"),
        ("{{ a ?? b ?? 'third' }}", "third"),
        ("{{ (outputs.x.y ?? 1) + 1 }}", "2"),
        ("{{ 'a??b' }}", "a??b"),
    ],
)
def test_pebble_null_coalescing(engine: TemplateEngine, source: str, expected: str) -> None:
    assert text(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.name equals 'Ada' }}", True),
        ("{{ outputs.nope is defined }}", False),
        ("{{ outputs.nope.deeper is not defined }}", True),
        ("{{ '{\"a\": 1}' is json }}", True),
        ("{{ 'nope' is json }}", False),
        ("{{ '' is empty }}", True),
        ("{{ none is null }}", True),
        ("{{ 'x' ~ 1 ~ inputs.name }}", "x1Ada"),
        ("{{ json('{\"a\": [1, 2]}').a }}", [1, 2]),
        ("{{ fromJson('[1]') }}", [1]),
        ("{{ {'a': 1} | json }}", '{"a":1}'),
        ("{{ outputs['extract-1'].value }}", 5),
        ("{{ 'Hello World' | slugify }}", "hello-world"),
        ("{{ 'abcdefghij' | abbreviate(6) }}", "abc..."),
        ("{{ vars.nested | keys }}", ["k"]),
        ("{{ 'file.csv' is endsWith('.csv') }}", True),
    ],
)
def test_pebble_operators_tests_and_functions(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd", "2024-03-07"),
        ("yyyy-MM-dd'T'HH:mm:ss", "2024-03-07T14:05:09"),
        ("dd/MM/yy HH:mm", "07/03/24 14:05"),
        ("EEE, d MMM yyyy", "Thu, 7 Mar 2024"),
        ("EEEE MMMM", "Thursday March"),
        ("HH:mm:ss.SSS", "14:05:09.123"),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", "2024-03-07T14:05:09Z"),
        ("%Y/%m/%d", "2024/03/07"),
        ("'quoted ''text'''", "quoted 'text'"),
    ],
)
def test_date_filter_understands_java_patterns(
    engine: TemplateEngine, pattern: str, expected: str
) -> None:
    ctx = {"d": datetime(2024, 3, 7, 14, 5, 9, 123456, tzinfo=UTC)}
    assert asyncio.run(engine.render('{{ d | date("' + pattern + '") }}', ctx)) == expected


def test_date_filter_accepts_iso_strings_and_timezones(engine: TemplateEngine) -> None:
    ctx = {"d": "2024-03-07T14:05:09Z"}
    source = "{{ d | date('yyyy-MM-dd HH:mm', timezone='Europe/Paris') }}"
    assert asyncio.run(engine.render(source, ctx)) == "2024-03-07 15:05"
    assert asyncio.run(engine.render("{{ d | dateAdd(1, 'DAYS') | date('yyyy-MM-dd') }}", ctx)) == (
        "2024-03-08"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ nope }}", "'nope' is undefined"),
        ("x {{ outputs.extract.value }}", "is undefined"),
        ("{{ inputs.n + nope }}", "'nope' is undefined"),
        ("{% for x in nope %}{% endfor %}", "'nope' is undefined"),
        ("{% if nope %}{% endif %}", "'nope' is undefined"),
        ("{{ nope == 1 }}", "'nope' is undefined"),
    ],
)
def test_undefined_names_are_errors_never_empty_strings(
    engine: TemplateEngine, source: str, message: str
) -> None:
    with pytest.raises(TemplateRenderError, match=message) as caught:
        native(engine, source)
    assert caught.value.expression == source


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ inputs.__class__ }}",
        "{{ now.__globals__ }}",
        "{{ range.__self__ }}",
        "{{ (1).__class__.__base__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ inputs.items.pop() }}",
    ],
)
def test_sandbox_refuses_escapes(engine: TemplateEngine, payload: str) -> None:
    ctx = {"inputs": {"items": [1, 2]}}
    with pytest.raises(TemplateRenderError):
        asyncio.run(engine.render(payload, ctx))
    assert ctx["inputs"]["items"] == [1, 2]


@pytest.mark.parametrize(
    "source", ["{% include 'x.txt' %}", "{% import 'm' as m %}", "{% extends 'base' %}"]
)
def test_include_import_extends_are_refused(engine: TemplateEngine, source: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="not available"):
        engine.check(source)


def test_syntax_errors_carry_the_template_line(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        engine.check("line one\nline two\nthen {{ a b }} here")
    assert caught.value.line == 3
    assert "expected token" in caught.value.message
    with pytest.raises(TemplateSyntaxError, match="unexpected '}'"):
        engine.check("{{ a }")


async def test_async_functions_are_awaited(engine: TemplateEngine) -> None:
    seen: list[str] = []

    async def secret(name: str) -> str:
        seen.append(name)
        return f"value-of-{name}"

    local = TemplateEngine()
    local.add_function("secret", secret)
    assert await local.render("Bearer {{ secret('TOKEN') }}", {}) == "Bearer value-of-TOKEN"
    assert await local.render_native("{{ secret('X') | upper }}", {}) == "VALUE-OF-X"
    assert seen == ["TOKEN", "X"]


async def test_render_function_renders_a_string_template(engine: TemplateEngine) -> None:
    ctx = {"vars": {"greeting": "Hi {{ inputs.name }}"}, "inputs": {"name": "Ada"}}
    assert await engine.render("{{ render(vars.greeting) }}!", ctx) == "Hi Ada!"


async def test_render_value_walks_nested_structures(engine: TemplateEngine) -> None:
    value = {"{{ flow.id }}-key": ["{{ inputs.n }}", {"deep": "{{ inputs.items }}"}], "n": 7}
    assert await engine.render_value(value, CTX) == {"hello-key": [3, {"deep": [1, 2, 3]}], "n": 7}


def test_raw_blocks_are_left_alone(engine: TemplateEngine) -> None:
    assert text(engine, "{% raw %}{{ a ? b : c }}{% endraw %}") == "{{ a ? b : c }}"


async def test_the_engine_itself_is_out_of_reach() -> None:
    engine = TemplateEngine()
    for source in ("{{ __plait_engine__ }}", "{{ render.__globals__ }}", "{{ range.__self__ }}"):
        with pytest.raises(TemplateError):
            await engine.render(source, {})
    assert await engine.render("{{ render('{{ 1 + 1 }}') }}", {}) == "2"


async def test_range_is_capped() -> None:
    engine = TemplateEngine()
    assert await engine.render_native("{{ range(3) | list }}", {}) == [0, 1, 2]
    with pytest.raises(TemplateError):
        await engine.render("{{ range(10000000) | list | length }}", {})
