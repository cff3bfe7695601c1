"""The sandbox's resource limits: text, list and integer sizes, the time budget, regexes.

The hostile reproductions run in a subprocess capped at 2 GB of address space and a generous
timeout, so a regression fails the test instead of eating the machine.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from plait.limits import override_limits
from plait.templating import TemplateEngine, TemplateRenderError, TemplateSyntaxError
from plait.templating._limits import TemplateLimitError

PLAIT = str(Path(sys.executable).with_name("plait"))
ADDRESS_SPACE = 2 * 2**30

_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from plait.templating import TemplateEngine
    engine = TemplateEngine()
    source = sys.argv[1]
    try:
        engine.check(source)
        print("RENDERED", len(asyncio.run(engine.render(source, {}))))
    except Exception as error:
        print(type(error).__name__, error)
    """
)


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run_capped(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_cap_memory,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _render_capped(source: str, **limits: str) -> str:
    env = {f"PLAIT_LIMIT_{k.upper()}": v for k, v in limits.items()}
    done = _run_capped([sys.executable, "-c", _SCRIPT, source], env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# -- the reproductions of the issue, in a capped subprocess --------------------------------------


@pytest.mark.parametrize(
    ("source", "variable"),
    [
        ("{{ ('a' * 10**10) | length }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ 2 ** (2 ** 36) }}", "PLAIT_LIMIT_TEMPLATE_MAX_INT_BITS"),
        ("{{ 10 ** (10 ** 10) }}", "PLAIT_LIMIT_TEMPLATE_MAX_INT_BITS"),
        ("{{ (2 ** 4000) * (2 ** 4000) }}", "PLAIT_LIMIT_TEMPLATE_MAX_INT_BITS"),
        ("{{ [1, 2] * 10**9 }}", "PLAIT_LIMIT_TEMPLATE_MAX_ITEMS"),
        ("{{ range(10**10) | list }}", "PLAIT_LIMIT_TEMPLATE_MAX_ITEMS"),
        ("{{ 'a'.ljust(10**10) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ 'a' | center(10**10) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ '%0999999999d' % 1 }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ '%*d' | format(10**10, 1) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ '{:>9999999999}'.format(1) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ 'x' | indent(10**10) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ 'abc' | replace('', 'x' * 10**7) }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ [1] | batch(10**9, 0) | list }}", "PLAIT_LIMIT_TEMPLATE_MAX_ITEMS"),
        ("{{ ['a' * 10**7] * 100 }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{{ (['a' * 10**7] * 100) | join }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}", "TEMPLATE_MAX_STRING"),
        (
            "{% for i in range(1000) %}{{ 'a' * 10**7 }}{% endfor %}",
            "PLAIT_LIMIT_TEMPLATE_MAX_STRING",
        ),
        (
            "{% set x %}{% for i in range(1000) %}{{ 'a' * 10**7 }}{% endfor %}{% endset %}{{ x }}",
            "PLAIT_LIMIT_TEMPLATE_MAX_STRING",
        ),
    ],
)
def test_a_hostile_template_fails_fast_with_bounded_memory(source: str, variable: str) -> None:
    out = _render_capped(source)
    assert out.startswith("TemplateLimitError"), out
    assert variable in out


def test_a_recursive_yaml_alias_is_refused_by_the_yaml_reader() -> None:
    """The yaml() function reads through the bounded YAML reader (plait.safeyaml)."""
    out = _render_capped("{{ yaml('a: &a [1, *a]') }}")
    assert out.startswith("TemplateRenderError"), out
    assert "recursive alias *a" in out


def test_validating_does_not_fold_constants() -> None:
    """``check`` (what ``plait flows validate`` runs) compiled ``'a' * 10**9`` into a 1 GB
    constant: now it only parses, and the render fails on the limit."""
    script = textwrap.dedent(
        """
        import tracemalloc
        from plait.templating import TemplateEngine
        engine = TemplateEngine()
        tracemalloc.start()
        try:
            engine.check(
                "{{ 'a' * 10**9 }}{{ 'b' * 10**9 | length }}{{ 'c' | center(10**9) }}"
            )
        except MemoryError:
            print("MemoryError")
        print(tracemalloc.get_traced_memory()[1])
        """
    )
    done = _run_capped([sys.executable, "-c", script])
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 20 * 2**20, done.stdout
    with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_MAX_STRING"):
        render(TemplateEngine(), "{{ 'a' * 10**9 }}")


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}",
        # no call at all inside the loops: only the loops' own check can stop them
        "{% set r = range(10**6) | list %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
    ],
)
def test_nested_loops_stop_at_the_time_budget(source: str) -> None:
    out = _render_capped(source, template_render_seconds="0.5")
    assert out.startswith("TemplateLimitError"), out
    assert "took more than 0.5 s to render (PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS)" in out


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10**6) %}{% for j in range(10**6) %}{{ j }}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% for i in range(10**6) %}{% endfor %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% for i in (range(10**6) | map('string')) %}{% for j in range(10**6) %}{% endfor %}"
        "{% endfor %}",
        "{{ range(10**6) | map('string') | map('string') | map('string') | list | length }}"
        "{% for i in range(10**6) %}{{ (range(10**6) | sum) }}{% endfor %}",
    ],
)
def test_every_kind_of_long_render_stops_at_the_time_budget(source: str) -> None:
    out = _render_capped(source, template_render_seconds="0.5")
    assert "PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS" in out or "RecursionError" in out, out


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('a' * 40 ~ '!') | regexMatch('^(a+)+$') }}",  # the issue's: linear in `regex`
        "{{ ('a' * 40 ~ '!') | regexMatch('^(a|aa)+$') }}",
        "{{ ('a' * 40 ~ '!') | regexReplace('^(a|aa)+$', 'x') }}",
        "{{ ('a' * 40 ~ '!') | regexExtract('^(a|aa)+$') }}",
        "{{ ('a' * 40 ~ '!') | replace({'^(a|aa)+$': 'x'}, regexp=true) }}",
        "{{ ('a' * 40 ~ '!') | split('^(a|aa)+$') }}",
    ],
)
def test_a_catastrophic_regex_stops_at_its_time_limit(source: str) -> None:
    out = _render_capped(source, template_regex_seconds="0.2")
    if "'^(a+)+$'" in source:
        assert out == "RENDERED 5"  # false, at once
        return
    assert out.startswith("TemplateLimitError"), out
    assert "took more than 0.2 s (PLAIT_LIMIT_TEMPLATE_REGEX_SECONDS)" in out


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 1 | jq('[range(1e10)]') }}", "ran for more than 2 s"),
        ("{{ 1 | jq('last(range(1e12))') }}", "ran for more than 2 s"),
        ("{{ 1 | jq('def f: [f, f]; f') }}", "ran "),
        ("{{ 1 | jq('[range(1e5)]') }}", "PLAIT_LIMIT_TEMPLATE_MAX_STRING"),
    ],
)
def test_a_hostile_jq_program_is_stopped(source: str, reason: str) -> None:
    """libjq runs in a capped worker process: it is killed on time, memory or output size, and
    the next call gets a fresh one."""
    script = (
        _SCRIPT.rstrip()
        + "\nprint(asyncio.run(engine.render(\"{{ '[1,2]' | jq('.[]') }}\", {})))\n"
    )
    env = {
        "PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS": "2",
        "PLAIT_LIMIT_TEMPLATE_MAX_STRING": "100000",
    }
    done = _run_capped([sys.executable, "-c", script, source], env)
    assert done.returncode == 0, done.stderr
    first, after = done.stdout.strip().splitlines()
    assert first.startswith("TemplateLimitError jq: "), first
    assert reason in first
    assert after == "[1,2]"


def test_the_error_names_the_task_and_property_over_the_real_cli(tmp_path: Path) -> None:
    flow = tmp_path / "huge.yaml"
    flow.write_text(
        "id: huge\nnamespace: t\ntasks:\n"
        "  - id: greet\n    type: plait.core.Log\n"
        "    message: \"{{ ('a' * 10**10) | length }}\"\n"
        "  - id: spin\n    type: plait.core.Log\n"
        '    message: "{% for i in range(10**6) %}{% for j in range(10**6) %}'
        '{% endfor %}{% endfor %}"\n'
    )
    env = {"PLAIT_HOME": str(tmp_path / "home"), "PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS": "0.5"}
    done = _run_capped([PLAIT, "flows", "validate", str(flow)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run_capped([PLAIT, "run", str(flow)], env)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "task 'greet', property 'message'" in out
    assert "PLAIT_LIMIT_TEMPLATE_MAX_STRING" in out
    assert "Traceback" not in out
    flow.write_text(flow.read_text().replace("{{ ('a' * 10**10) | length }}", "hi"))
    done = _run_capped([PLAIT, "run", str(flow)], env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "task 'spin', property 'message'" in out
    assert "PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS" in out


# -- each limit, in process, with small values ------------------------------------------------


def render(engine: TemplateEngine, source: str, context: dict[str, Any] | None = None) -> Any:
    return asyncio.run(engine.render_native(source, context or {}))


@pytest.fixture
def engine() -> TemplateEngine:
    return TemplateEngine()


@pytest.mark.parametrize(
    ("fits", "over"),
    [
        ("{{ 'a' * 100 }}", "{{ 'a' * 101 }}"),
        ("{{ 100 * 'a' }}", "{{ 101 * 'a' }}"),
        ("{{ 'a' * 50 + 'b' * 50 }}", "{{ 'a' * 50 + 'b' * 51 }}"),
        ("{{ 'a' * 50 ~ 'b' * 50 }}", "{{ 'a' * 50 ~ 'b' * 51 }}"),
        ("{{ '%100d' % 1 }}", "{{ '%101d' % 1 }}"),
        ("{{ '%*d' % (100, 1) }}", "{{ '%*d' % (101, 1) }}"),
        ("{{ '%100d' | format(1) }}", "{{ '%101d' | format(1) }}"),
        ("{{ '{:100}'.format(1) }}", "{{ '{:101}'.format(1) }}"),
        ("{{ '{:{}}'.format(1, 100) }}", "{{ '{:{}}'.format(1, 101) }}"),
        ("{{ 'a'.ljust(100) }}", "{{ 'a'.ljust(101) }}"),
        ("{{ 'a'.center(100) }}", "{{ 'a'.zfill(101) }}"),
        ("{{ 'a\tb'.expandtabs(97) }}", "{{ 'a\tb'.expandtabs(99) }}"),
        ("{{ 'a' | center(100) }}", "{{ 'a' | center(101) }}"),
        ("{{ 'a' | indent(99) }}", "{{ 'a\nb' | indent(99) }}"),
        ("{{ 'a' | nindent(10, '-') }}", "{{ 'a\nb' | nindent(50, '--') }}"),
        ("{{ 'aaaa' | replace('a', 'b' * 25) }}", "{{ 'aaaa' | replace('a', 'b' * 26) }}"),
        ("{{ 'aaa' | replace('', 'b' * 24) }}", "{{ 'aaa' | replace('', 'b' * 25) }}"),
        ("{{ 'aaa' | replace({'': 'b' * 24}) }}", "{{ 'aaa' | replace({'a': 'b' * 34}) }}"),
        ("{{ 'ab'.translate({97: 'c' * 50}) }}", "{{ 'ab'.translate({97: 'c' * 51}) }}"),
        ("{{ 'aaaa'.replace('a', 'b' * 25) }}", "{{ 'aaaa'.replace('a', 'b' * 26) }}"),
        (
            "{{ 'aaaa' | regexReplace('a', 'b' * 25) }}",
            "{{ 'aaaa' | regexReplace('a', 'b' * 26) }}",
        ),
        (
            "{{ 'aaaa' | replace({'a': 'b' * 25}, regexp=true) }}",
            "{{ 'aaaa' | replace({'a': 'b' * 26}, regexp=true) }}",
        ),
        (
            "{{ ('a' * 30) | wordwrap(1, wrapstring='xx') }}",
            "{{ ('a' * 40) | wordwrap(1, true, 'xx') }}",
        ),
        ("{{ ['a' * 40] * 2 }}", "{{ ['a' * 40] * 3 }}"),
        ("{{ ['a' * 40] + ['b' * 40] }}", "{{ ['a' * 40] * 2 + ['b' * 40] }}"),
        ("{{ {'k': 'a' * 90} | json }}", "{{ {'k': 'a' * 100} | json }}"),
        ("{{ {'k': 'a' * 90} | string }}", "{{ {'k': 'a' * 100} | yaml }}"),
        ("{{ 'x{{ 1 }}' ~ ('a' * 90) }}", "{% for i in range(11) %}{{ 'a' * 10 }}{% endfor %}"),
        (
            "{% set s %}{% for i in range(10) %}{{ 'a' * 10 }}{% endfor %}{% endset %}{{ 1 }}",
            "{% set s %}{% for i in range(11) %}{{ 'a' * 10 }}{% endfor %}{% endset %}{{ 1 }}",
        ),
        (
            "{% macro m() %}{{ 'a' * 100 }}{% endmacro %}{{ m() | length }}",
            "{% macro m() %}{{ 'a' * 60 }}{{ 'a' * 41 }}{% endmacro %}{{ m() | length }}",
        ),
    ],
)
def test_text_is_bounded_by_template_max_string(
    engine: TemplateEngine, fits: str, over: str
) -> None:
    with override_limits(template_max_string=100):
        render(engine, fits)
        with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_MAX_STRING"):
            render(engine, over)


def test_joined_text_is_bounded_before_it_is_built(engine: TemplateEngine) -> None:
    context = {"short": ["x"] * 34, "long": ["x"] * 35}
    with override_limits(template_max_string=100):
        assert len(render(engine, "{{ 'ab'.join(short) }}", context)) == 100
        assert len(render(engine, "{{ short | join('-') }}", context)) == 67
        with pytest.raises(TemplateLimitError, match="the joined text would have 103"):
            render(engine, "{{ 'ab'.join(long) }}", context)
        with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_MAX_STRING"):
            render(engine, "{{ long | join('--') }}", context)


def test_text_output_is_bounded_too(engine: TemplateEngine) -> None:
    with override_limits(template_max_string=5000):
        asyncio.run(engine.render("{% for i in range(50) %}{{ 'a' * 100 }}{% endfor %}", {}))
        with pytest.raises(TemplateLimitError, match="the output would have 5,100 characters"):
            asyncio.run(engine.render("{% for i in range(51) %}{{ 'a' * 100 }}{% endfor %}", {}))


@pytest.mark.parametrize(
    ("fits", "over"),
    [
        ("{{ range(100) | list | length }}", "{{ range(101) | list | length }}"),
        ("{{ range(0, 198, 2) | list | length }}", "{{ range(0, 200, 2) | list | length }}"),
        ("{{ ([1, 2] * 50) | length }}", "{{ ([1, 2] * 51) | length }}"),
        ("{{ ([1] * 50 + [2] * 50) | length }}", "{{ ([1] * 50 + [2] * 51) | length }}"),
        ("{{ [1] | batch(100, 0) | list }}", "{{ [1] | batch(101, 0) | list }}"),
        ("{{ [1] | slice(100) | list }}", "{{ [1] | slice(101) | list }}"),
        ("{{ ('a' * 100) | list | length }}", "{{ ('a' * 101) | list | length }}"),
        ("{{ ('a' * 100) | batch(1) | list | length }}", "{{ ('a' * 101) | batch(1) | list }}"),
        ("{{ ('a' * 100) | sort | length }}", "{{ ('a' * 101) | unique | list }}"),
        (
            "{{ ([[1] * 50] * 2) | sum(start=[]) | length }}",
            "{{ [[1] * 50, [1] * 51] | sum(start=[]) }}",
        ),
        ("{{ ('a\n' * 99).splitlines() | length }}", "{{ ('a\n' * 100).splitlines() }}"),
        ("{{ ('a,' * 99).split(',') | length }}", "{{ ('a,' * 100).split(',') | length }}"),
        ("{{ ('a,' * 99) | split(',') | length }}", "{{ ('a,' * 101) | split(',') | length }}"),
    ],
)
def test_lists_are_bounded_by_template_max_items(
    engine: TemplateEngine, fits: str, over: str
) -> None:
    with override_limits(template_max_items=100):
        render(engine, fits)
        with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_MAX_ITEMS"):
            render(engine, over)


def test_integers_are_bounded_by_template_max_int_bits(engine: TemplateEngine) -> None:
    assert render(engine, "{{ 2 ** 4095 }}") == 2**4095
    assert render(engine, "{{ (2 ** 2000) * (2 ** 2000) }}") == 2**4000
    assert render(engine, "{{ 2 ** -2 }}") == 0.25
    assert render(engine, "{{ (-1) ** (10 ** 30) }}") == 1
    assert render(engine, "{{ 7 ** 2 + 3 * 4 - 1 }}") == 60
    for source in ("{{ 2 ** 4096 }}", "{{ 2 ** (2 ** 36) }}", "{{ (2 ** 4000) * (2 ** 97) }}"):
        with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_MAX_INT_BITS"):
            render(engine, source)
    with override_limits(template_max_int_bits=64):
        assert render(engine, "{{ 2 ** 63 }}") == 2**63
        with pytest.raises(TemplateLimitError, match="more than the limit of 64"):
            render(engine, "{{ 2 ** 64 }}")


def test_a_plugin_function_or_filter_result_is_bounded(engine: TemplateEngine) -> None:
    async def big(n: int) -> list[int]:
        return list(range(n))

    engine.add_function("big", lambda n: "a" * n)
    engine.add_filter("bigf", lambda value, n: [value] * n)
    with override_limits(template_max_string=100, template_max_items=100):
        assert render(engine, "{{ big(100) | length }}") == 100
        with pytest.raises(TemplateLimitError, match="the result of the call would have 101"):
            render(engine, "{{ big(101) }}")
        with pytest.raises(TemplateLimitError, match="the result of 'bigf' would have 101 items"):
            render(engine, "{{ 1 | bigf(101) }}")
        with pytest.raises(TemplateLimitError, match="would have 101 items"):
            render(engine, "{{ abig(101) }}", {"abig": big})


def test_the_time_budget_is_shared_by_nested_renders(engine: TemplateEngine) -> None:
    context = {
        "t": "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}"
    }
    with override_limits(template_render_seconds=0.2):
        with pytest.raises(TemplateLimitError, match=r"took more than 0\.2 s to render"):
            render(engine, "{{ render(t) }}", context)

        async def both() -> None:
            with engine.budget():
                await engine.render_native("{{ 1 }}", {})
                await engine.render("{{ render(t) }}", context)

        with pytest.raises(TemplateLimitError, match="PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS"):
            asyncio.run(both())


@pytest.mark.parametrize(
    "source",
    ["{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{{ 1" + " + 1" * 20000 + " }}"],
)
def test_a_template_nested_too_deeply_is_a_syntax_error(
    engine: TemplateEngine, source: str
) -> None:
    with pytest.raises(TemplateSyntaxError, match="the template is nested too deeply"):
        engine.check(source)


def test_a_limit_error_is_a_render_error(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(engine, "{{ 'a' * 10**10 }}")
    assert str(caught.value) == (
        "the repeated text would have 10,000,000,000 characters, more than the limit of "
        "16,777,216 (PLAIT_LIMIT_TEMPLATE_MAX_STRING) in `{{ 'a' * 10**10 }}`"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ [1] * 3 }}", [1, 1, 1]),
        ("{{ 3 * [1] }}", [1, 1, 1]),
        ("{{ 'a' + 'b' }}", "ab"),
        ("{{ [1] + [2] }}", [1, 2]),
        ("{{ 1 + 2.5 }}", 3.5),
        ("{{ 7 % 3 }}", 1),
        ("{{ '%s-%05d' % ('x', 42) }}", "x-00042"),
        ("{{ '%(a)s' % {'a': 1} }}", "1"),
        ("{{ 2 ** 10 }}", 1024),
        ("{{ 2.0 ** 0.5 }}", 2.0**0.5),
        ("{{ 'x' * 0 }}", ""),
        ("{{ 'x' * -3 }}", ""),
        ("{{ [1, 2] * True }}", [1, 2]),
        ("{% for x in 'abc' %}{{ x }}{% endfor %}", "abc"),
        ("{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}", "a1"),
        ("{% for x in range(100) if x > 97 %}{{ x }}{% else %}none{% endfor %}", "9899"),
        ("{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none"),
        (
            "{% for x in range(70) %}{% if loop.last %}{{ loop.length }}{% endif %}{% endfor %}",
            "70",
        ),
        ("{% for x in range(3) | map('string') %}{{ x }}{% endfor %}", "012"),
        ("{% for x in [[1, [2]]] recursive %}{{ x }}{% endfor %}", "[1,[2]]"),
    ],
)
def test_operators_and_loops_keep_their_meaning(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    assert render(engine, source) == expected
