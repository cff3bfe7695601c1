"""Kestra's and Pebble's filters and functions, rendered through the real TemplateEngine.

Each case checks the exact native value (a lone ``{{ expression }}``), the exact text when the
value is printed, or the exact error message.
"""

import asyncio
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from plait.templating import TemplateEngine, TemplateError, TemplateRenderError

CTX: dict[str, Any] = {
    "inputs": {"name": "Ada", "n": 3, "obj": {"a": [1, 2], "b": "x"}, "items": [3, 1, 2]},
    "d": "2024-03-07T14:05:09Z",
    "fine": "2024-03-07T14:05:09.123456789Z",
    "moment": datetime(2024, 3, 7, 14, 5, 9, 123456, tzinfo=UTC),
    "day": date(2024, 3, 7),
    "crlf": "a\r\nb",
    "lines": "a\nb\n\nc",
    "quote": 'it\'s "x"',
    "json_text": '{"a": {"b": 3}}',
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "templating.md"


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def native(engine: TemplateEngine, source: str) -> Any:
    return asyncio.run(engine.render_native(source, CTX))


def text(engine: TemplateEngine, source: str) -> str:
    return asyncio.run(engine.render(source, CTX))


def error(engine: TemplateEngine, source: str) -> str:
    with pytest.raises(TemplateRenderError) as caught:
        native(engine, source)
    assert caught.value.expression == source
    return caught.value.message


# -- jq ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.obj | jq('.a') }}", [[1, 2]]),
        ("{{ inputs.obj | jq('.a') | first }}", [1, 2]),
        ("{{ inputs.obj | jq('.a[1]') | first }}", 2),
        ("{{ inputs.obj | jq('.b') | first }}", "x"),
        ("{{ json_text | jq('.a.b') | first }}", 3),
        ("{{ '[1, 2, 3]' | jq('.[] | select(. > 1)') }}", [2, 3]),
        ("{{ [1, 2, 3] | jq('.') }}", [[1, 2, 3]]),
        ("{{ [1, 2, 3] | jq('.[0]') | first }}", 1),
        ("{{ [1, 2, 3] | jq('map(. * 2)') | first }}", [2, 4, 6]),
        ("{{ {'a': 1.5} | jq('.a * 2') | first }}", 3),
        ("{{ {'a': none, 't': true} | jq('.a, .t') }}", [None, True]),
        ("{{ inputs.obj | jq('empty') }}", []),
        ("{{ inputs.obj | jq('keys') | first }}", ["a", "b"]),
        ("{{ '\"text\"' | jq('ascii_upcase') | first }}", "TEXT"),
        ("{{ moment | jq('.') | first }}", "2024-03-07T14:05:09.123456Z"),
        ("{{ 7 | jq('. + 1') | first }}", 8),
        ("{{ none | jq('.') }}", None),
        ("{{ inputs.obj | jq(expression='.b') | first }}", "x"),
    ],
)
def test_jq_returns_the_list_of_results(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


def test_jq_results_print_as_json(engine: TemplateEngine) -> None:
    assert text(engine, "{{ inputs.obj | jq('.a') }}") == "[[1,2]]"
    assert text(engine, "{{ inputs.obj | jq('.b') | first }}") == "x"
    assert text(engine, "v={{ [1, 2] | jq('.[0]') | first }}") == "v=1"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ inputs.obj | jq('.[') }}",
            "jq: invalid expression '.[': syntax error, unexpected end of file at <top-level>, "
            "line 1, column 2",
        ),
        (
            "{{ 'nope' | jq('.') }}",
            "jq: the input is text that is not JSON (Expecting value at char 0)",
        ),
        (
            "{{ '1 2' | jq('.') }}",
            "jq: the input is text that is not JSON (Extra data at char 2)",
        ),
        (
            "{{ inputs.obj | jq('.a.b') }}",
            "jq: '.a.b' failed: Cannot index array with string (\"b\")",
        ),
        ("{{ inputs.obj | jq('error(\"boom\")') }}", "jq: 'error(\"boom\")' failed: boom"),
        ("{{ inputs.obj | jq }}", "jq: expects an argument 'expression'"),
        ("{{ inputs.obj | jq(1) }}", "jq: the argument 'expression' must be text, got a number"),
        ("{{ nope | jq('.') }}", "'nope' is undefined"),
        ("{{ inputs.obj | jq(nope) }}", "'nope' is undefined"),
    ],
)
def test_jq_errors(engine: TemplateEngine, source: str, message: str) -> None:
    assert error(engine, source) == message


# -- number, className, string --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '12' | number }}", 12),
        ("{{ '-7' | number }}", -7),
        ("{{ '+7' | number }}", 7),
        ("{{ '0' | number }}", 0),
        ("{{ '1.5' | number }}", 1.5),
        ("{{ '.5' | number }}", 0.5),
        ("{{ '2.' | number }}", 2.0),
        ("{{ '1e3' | number }}", 1000.0),
        ("{{ '-1.5E-2' | number }}", -0.015),
        ("{{ '0x1F' | number }}", 31),
        ("{{ '-0X1f' | number }}", -31),
        ("{{ '#ff' | number }}", 255),
        ("{{ '010' | number }}", 8),  # a leading 0 is octal, as in Kestra
        ("{{ '12L' | number }}", 12),
        ("{{ '2.5f' | number }}", 2.5),
        ("{{ '3d' | number }}", 3.0),
        ("{{ '123456789012345678901234567890' | number }}", 123456789012345678901234567890),
        ("{{ '1.5' | number + 1 }}", 2.5),
        ("{{ '42' | number('INT') }}", 42),
        ("{{ '42' | number('int') }}", 42),
        ("{{ '0x10' | number('INT') }}", 16),
        ("{{ '3000000000' | number('LONG') }}", 3000000000),
        ("{{ '98765432109876543210' | number('BIGINTEGER') }}", 98765432109876543210),
        ("{{ '1.25' | number('DOUBLE') }}", 1.25),
        ("{{ '2' | number('FLOAT') }}", 2.0),
        ("{{ '2.5f' | number('FLOAT') }}", 2.5),
        ("{{ ' 1.5 ' | number('DOUBLE') }}", 1.5),
        ("{{ '1.10' | number('BIGDECIMAL') }}", 1.1),
        ("{{ '12' | number(type='LONG') }}", 12),
        ("{{ 3 | number }}", 3),
        ("{{ 1.5 | number }}", 1.5),
        ("{{ 7 | number('DOUBLE') }}", 7.0),
        ("{{ none | number }}", None),
    ],
)
def test_number_parses_text_like_kestra(engine: TemplateEngine, source: str, expected: Any) -> None:
    value = native(engine, source)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'abc' | number }}", "number: cannot parse 'abc' as a number"),
        ("{{ '' | number }}", "number: cannot parse '' as a number"),
        ("{{ ' 12' | number }}", "number: cannot parse ' 12' as a number"),
        ("{{ '1.2.3' | number }}", "number: cannot parse '1.2.3' as a number"),
        ("{{ '08' | number }}", "number: cannot parse '08' as a number"),
        ("{{ '1_000' | number }}", "number: cannot parse '1_000' as a number"),
        ("{{ 'NaN' | number }}", "number: cannot parse 'NaN' as a number"),
        ("{{ '1.5L' | number }}", "number: cannot parse '1.5L' as a number"),
        ("{{ '1e999' | number }}", "number: cannot parse '1e999' as a number"),
        ("{{ '1.5' | number('INT') }}", "number: cannot parse '1.5' as INT"),
        ("{{ '3000000000' | number('INT') }}", "number: '3000000000' is out of range for INT"),
        (
            "{{ '9223372036854775808' | number('LONG') }}",
            "number: '9223372036854775808' is out of range for LONG",
        ),
        ("{{ 'x' | number('DOUBLE') }}", "number: cannot parse 'x' as DOUBLE"),
        ("{{ '1f' | number('BIGDECIMAL') }}", "number: cannot parse '1f' as BIGDECIMAL"),
        (
            "{{ '1' | number('SHORT') }}",
            "number: unknown type 'SHORT' (expected one of INT, FLOAT, LONG, DOUBLE, "
            "BIGDECIMAL, BIGINTEGER)",
        ),
        ("{{ true | number }}", "number: expected text, got a boolean"),
        ("{{ [1] | number }}", "number: expected text, got a list"),
        ("{{ nope | number }}", "'nope' is undefined"),
    ],
)
def test_number_errors(engine: TemplateEngine, source: str, message: str) -> None:
    assert error(engine, source) == message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'x' | className }}", "java.lang.String"),
        ("{{ '12' | number | className }}", "java.lang.Integer"),
        ("{{ '3000000000' | number | className }}", "java.lang.Long"),
        ("{{ '99999999999999999999' | number | className }}", "java.math.BigInteger"),
        ("{{ '12.3' | number | className }}", "java.lang.Double"),
        ("{{ true | className }}", "java.lang.Boolean"),
        ("{{ {'a': 1} | className }}", "java.util.LinkedHashMap"),
        ("{{ [1] | className }}", "java.util.ArrayList"),
        ("{{ moment | className }}", "java.time.ZonedDateTime"),
        ("{{ day | className }}", "java.time.LocalDate"),
        ("{{ none | className }}", None),
    ],
)
def test_class_name_gives_kestras_java_class(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 12 | string }}", "12"),
        ("{{ 1.5 | string }}", "1.5"),
        ("{{ true | string }}", "true"),
        ("{{ 'abc' | string }}", "abc"),
        ("{{ [1, 'a'] | string }}", '[1,"a"]'),
        ("{{ {'a': 1} | string }}", '{"a":1}'),
        ("{{ moment | string }}", "2024-03-07T14:05:09.123456Z"),
        ("{{ none | string }}", None),
        ("{{ [1, 2] | map('string') | list }}", ["1", "2"]),
    ],
)
def test_string_prints_the_kestra_way(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


# -- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
        ("{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
        ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
        ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
        ("{{ 'abc' | substringBefore('x') }}", "abc"),
        ("{{ 'abc' | substringAfter('x') }}", ""),
        ("{{ 'abc' | substringBeforeLast('x') }}", "abc"),
        ("{{ 'abc' | substringAfterLast('x') }}", ""),
        ("{{ 'abc' | substringBefore('') }}", ""),
        ("{{ 'abc' | substringAfter('') }}", "abc"),
        ("{{ 'abc' | substringBeforeLast('') }}", "abc"),
        ("{{ 'abc' | substringAfterLast('') }}", ""),
        ("{{ 'abc.' | substringAfterLast('.') }}", ""),
        ("{{ 'file.tar.gz' | substringAfter(separator='.') }}", "tar.gz"),
        ("{{ 12.5 | substringBefore('.') }}", "12"),
        ("{{ none | substringBefore('.') }}", None),
    ],
)
def test_substring_filters(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'one,two,three' | split(',') }}", ["one", "two", "three"]),
        ("{{ 'a.b.c' | split('\\\\.') }}", ["a", "b", "c"]),
        ("{{ 'a.b' | split('.') }}", []),  # the delimiter is a regex: '.' matches everything
        ("{{ 'a1b22c' | split('\\\\d+') }}", ["a", "b", "c"]),
        ("{{ 'a,b,,' | split(',') }}", ["a", "b"]),
        ("{{ 'a,b,,' | split(',', -1) }}", ["a", "b", "", ""]),
        ("{{ ',a,b' | split(',') }}", ["", "a", "b"]),
        ("{{ 'a,b,c,d' | split(',', 2) }}", ["a", "b,c,d"]),
        ("{{ 'a,b,c' | split(',', 1) }}", ["a,b,c"]),
        ("{{ 'a,b,' | split(',', 5) }}", ["a", "b", ""]),
        ("{{ 'abc' | split('') }}", ["a", "b", "c"]),
        ("{{ 'abc' | split(',') }}", ["abc"]),
        ("{{ '' | split(',') }}", [""]),
        ("{{ 'a b' | split(delimiter=' ', limit=0) }}", ["a", "b"]),
        ("{{ none | split(',') }}", None),
    ],
)
def test_split_is_javas_string_split(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


def test_split_prints_as_json(engine: TemplateEngine) -> None:
    assert text(engine, "{{ 'a,b' | split(',') }}") == '["a","b"]'
    assert text(engine, "{% for p in 'a,b' | split(',') %}[{{ p }}]{% endfor %}") == "[a][b]"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'I like %this%' | replace({'%this%': 'cats'}) }}", "I like cats"),
        ("{{ 'I like %a% and %b%.' | replace({'%a%': 'x', '%b%': 1}) }}", "I like x and 1."),
        ("{{ 'a1b22' | replace({'\\\\d+': '#'}, regexp=true) }}", "a#b#"),
        ("{{ 'a1b22' | replace({'\\\\d+': '#'}, true) }}", "a#b#"),
        (
            "{{ '2024-03-07' | replace({'(\\\\d+)-(\\\\d+)-(\\\\d+)': '$3/$2/$1'}, regexp=true) }}",
            "07/03/2024",
        ),
        ("{{ ['a-b', {'k': 'c-d'}, 5] | replace({'-': '_'}) }}", ["a_b", {"k": "c_d"}, "5"]),
        ("{{ 'x' | replace(replace_pairs={'x': 'y'}) }}", "y"),
        ("{{ 'aXbX' | replace('X', '-') }}", "a-b-"),
        ("{{ 'aXbX' | replace('X', '-', 1) }}", "a-bX"),
        ("{{ 12 | replace('1', '9') }}", "92"),
        ("{{ none | replace({'a': 'b'}) }}", None),
    ],
)
def test_replace_takes_a_map_or_jinjas_arguments(
    engine: TemplateEngine, source: str, expected: Any
) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'abc-123' | regexMatch('\\\\d+') }}", True),
        ("{{ 'abc' | regexMatch('^b') }}", False),
        ("{{ 'hello world' | regexMatch(regex='hello.*') }}", True),
        ("{{ 42 | regexMatch('^4') }}", True),
        ("{{ none | regexMatch('x') }}", False),
        ("{{ 'hello world' | regexReplace('world', 'java') }}", "hello java"),
        ("{{ 'a1b22' | regexReplace('(\\\\d)', '<$1>') }}", "a<1>b<2><2>"),
        ("{{ 'ab' | regexReplace('(?<x>b)', '${x}${x}') }}", "abb"),
        ("{{ 'a.b' | regexReplace('\\\\.', '\\\\$') }}", "a$b"),
        ("{{ 'abc' | regexReplace('(b)(c)?', '[$1$2]') }}", "a[bc]"),
        ("{{ 'ab' | regexReplace('(x)?b', '[$1]') }}", "a[]"),
        ("{{ 'aaa' | regexReplace('a', '$0$0') }}", "aaaaaa"),
        ("{{ 'abc' | regexReplace('(a)(b)(c)', '$12') }}", "a2"),  # $1 then '2': no group 12
        ("{{ none | regexReplace('a', 'b') }}", None),
        ("{{ 'order-12345-done' | regexExtract('\\\\d+') }}", "12345"),
        ("{{ 'order-12345-done' | regexExtract('(\\\\w+)-(\\\\d+)', 2) }}", "12345"),
        ("{{ 'v2024' | regexExtract('(?<year>\\\\d{4})', group=1) }}", "2024"),
        ("{{ 'abc' | regexExtract('\\\\d+') }}", None),
        ("{{ 'abc' | regexExtract('(x)?a', 1) }}", None),
        ("{{ 'abab' | regexExtract('(?<n>a)b\\\\k<n>') }}", "aba"),
        ("{{ 'ab\\n' | regexMatch('b\\\\z') }}", False),
        ("{{ none | regexExtract('x') }}", None),
    ],
)
def test_regex_filters_use_java_syntax(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ quote | escapeChar('single') }}", 'it\\\'s "x"'),
        ("{{ quote | escapeChar('double') }}", 'it\'s \\"x\\"'),
        ("{{ quote | escapeChar('shell') }}", "it'\\''s \"x\""),
        ("{{ quote | escapeChar('SHELL') }}", "it'\\''s \"x\""),
        ("{{ quote | escapeChar(type='single') }}", 'it\\\'s "x"'),
        (
            "{{ {'a': \"'\", 'b': [\"'\", 1, none]} | escapeChar('single') }}",
            {"a": "\\'", "b": ["\\'", "1", None]},
        ),
        ("{{ 5 | escapeChar('single') }}", "5"),
        ("{{ none | escapeChar('single') }}", None),
    ],
)
def test_escape_char(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ lines | indent(2) }}", "a\n  b\n  \n  c"),
        ("{{ lines | indent(2, '-') }}", "a\n--b\n--\n--c"),
        ("{{ lines | indent(amount=1, prefix='\\t') }}", "a\n\tb\n\t\n\tc"),
        ("{{ lines | nindent(2) }}", "\n  a\n  b\n  \n  c"),
        ("{{ crlf | indent(2) }}", "a\r\n  b"),
        ("{{ crlf | nindent(1) }}", "\r\n a\r\n b"),
        ("{{ 'one' | indent(4) }}", "one"),
        ("{{ 'one' | nindent(4) }}", "\n    one"),
        ("{{ lines | indent(0) }}", "a\nb\n\nc"),
        ("{{ '' | nindent(2) }}", ""),
        ("{{ none | indent(2) }}", None),
    ],
)
def test_indent_and_nindent(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


def test_nindent_places_a_block_in_yaml(engine: TemplateEngine) -> None:
    source = "config:{{ {'a': 1, 'b': [1, 2]} | yaml | trim | nindent(2) }}"
    assert text(engine, source) == "config:\n  a: 1\n  b:\n    - 1\n    - 2"


# -- encodings and hashes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'test' | base64encode }}", "dGVzdA=="),
        ("{{ 'héllo' | base64encode }}", "aMOpbGxv"),
        ("{{ 12 | base64encode }}", "MTI="),
        ("{{ 'dGVzdA==' | base64decode }}", "test"),
        ("{{ 'dGVzdA' | base64decode }}", "test"),
        ("{{ 'aMOpbGxv' | base64decode }}", "héllo"),
        ("{{ '' | base64decode }}", ""),
        ("{{ '/w==' | base64decode }}", "\ufffd"),
        ("{{ 'test' | md5 }}", "098f6bcd4621d373cade4e832627b4f6"),
        ("{{ 'test' | sha1 }}", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),
        (
            "{{ 'test' | sha256 }}",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        (
            "{{ 'test' | sha512 }}",
            "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2"
            "7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff",
        ),
        ("{{ '' | md5 }}", "d41d8cd98f00b204e9800998ecf8427e"),
        ("{{ none | sha256 }}", None),
        ("{{ 'a b&c=d/é~*' | urlencode }}", "a+b%26c%3Dd%2F%C3%A9%7E*"),
        ("{{ {'q': 'a b', 'n': 1} | urlencode }}", "q=a+b&n=1"),
        ("{{ 'a+b%26c%3Dd%2F%C3%A9' | urldecode }}", "a b&c=d/é"),
        ("{{ '%FF' | urldecode }}", "\ufffd"),
        ("{{ 'plain' | urldecode }}", "plain"),
        ("{{ none | urldecode }}", None),
    ],
)
def test_encodings_and_hashes(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


# -- collections ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", [[1, 2], [3, 4], [5]]),
        ("{{ [1, 2, 3] | chunk(size=5) }}", [[1, 2, 3]]),
        ("{{ [1, 2, 3] | chunk(2.9) }}", [[1, 2], [3]]),
        ("{{ [] | chunk(2) }}", []),
        ("{{ none | chunk(2) }}", None),
        ("{{ [1, 2, 1, 'a', 'a', 3] | distinct }}", [1, 2, "a", 3]),
        ("{{ [1, 1.0, true, 1] | distinct }}", [1, 1.0, True]),
        ("{{ [{'a': 1}, {'a': 1}, [1], [1]] | distinct }}", [{"a": 1}, [1]]),
        ("{{ none | distinct }}", None),
        ("{{ [2, 2, 1] | uniq }}", [2, 1]),
        ("{{ 'text' | uniq }}", "text"),
        ("{{ none | uniq }}", None),
        ("{{ [1, [2, 3], [[4]], 5] | flatten }}", [1, 2, 3, [4], 5]),
        ("{{ none | flatten }}", None),
        ("{{ {'a': 1, 'b': 2} | merge({'b': 3, 'c': 4}) }}", {"a": 1, "b": 3, "c": 4}),
        ("{{ {'a': 1} | merge(['x']) }}", {"a": 1, "x": "x"}),
        ("{{ [1, 2] | merge([3]) }}", [1, 2, 3]),
        ("{{ [1] | merge({'k': 'v'}) }}", [1, {"k": "v"}]),
        ("{{ none | merge([1]) }}", [1]),
        ("{{ [1] | merge(none) }}", [1]),
        ("{{ inputs.items | rsort }}", [3, 2, 1]),
        ("{{ ['b', 'c', 'a'] | rsort }}", ["c", "b", "a"]),
        ("{{ none | rsort }}", None),
    ],
)
def test_collection_filters(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


def test_collection_filters_leave_their_input_alone(engine: TemplateEngine) -> None:
    assert native(engine, "{{ inputs.items | rsort }}") == [3, 2, 1]
    assert CTX["inputs"]["items"] == [3, 1, 2]
    assert text(engine, "{{ [1, 2, 3] | chunk(2) }}") == "[[1,2],[3]]"


# -- YAML -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{{ {'a': 1, 'b': [1, 2], 'c': {'d': 'x'}} | yaml }}",
            "a: 1\nb:\n  - 1\n  - 2\nc:\n  d: x\n",
        ),
        ("{{ [{'a': 1, 'b': 2}] | yaml }}", "- a: 1\n  b: 2\n"),
        (
            "{{ {'s': 'yes', 'n': '123', 'e': '', 'q': 'a: b'} | yaml }}",
            's: "yes"\nn: "123"\ne: ""\nq: "a: b"\n',
        ),
        ("{{ {'m': 'one\\ntwo'} | yaml }}", 'm: "one\\ntwo"\n'),
        (
            "{{ {'t': true, 'z': none, 'f': 1.5, 'u': 'é'} | yaml }}",
            "t: true\nz: null\nf: 1.5\nu: é\n",
        ),
        ("{{ {'when': moment} | yaml }}", 'when: "2024-03-07T14:05:09.123456Z"\n'),
        ("{{ 'text' | yaml }}", "text\n"),
        ("{{ [] | yaml }}", "[]\n"),
        ("{{ none | yaml }}", "null"),
    ],
)
def test_yaml_filter_writes_yaml(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ yaml('a: 1\\nb: [x, true, null, 1.5]') }}", {"a": 1, "b": ["x", True, None, 1.5]}),
        ("{{ yaml('- a\\n- b') }}", ["a", "b"]),
        ("{{ yaml('when: 2024-03-07') }}", {"when": "2024-03-07"}),
        ("{{ yaml('plain') }}", "plain"),
        ("{{ yaml('') }}", None),
        ("{{ yaml('k: v').k }}", "v"),
        ("{{ yaml({'a': [1]} | yaml) }}", {"a": [1]}),
    ],
)
def test_yaml_function_parses_yaml(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ d | timestamp }}", 1709820309),
        ("{{ d | timestampMilli }}", 1709820309000),
        ("{{ d | timestampMicro }}", 1709820309000000),
        ("{{ d | timestampNano }}", 1709820309000000000),
        ("{{ fine | timestampMilli }}", 1709820309123),
        ("{{ fine | timestampMicro }}", 1709820309123456),
        ("{{ fine | timestampNano }}", 1709820309123456789),
        ("{{ moment | timestampNano }}", 1709820309123456000),
        ("{{ day | timestampMilli }}", 1709769600000),
        ("{{ '2024-03-07T15:05:09+01:00' | timestampMilli }}", 1709820309000),
        ("{{ 1709820309 | timestampMilli }}", 1709820309000),
        ("{{ '1969-12-31T23:59:59.9995Z' | timestampMilli }}", -1),
        ("{{ '1969-12-31T23:59:59.9995Z' | timestampMicro }}", -500),
    ],
)
def test_timestamp_filters(engine: TemplateEngine, source: str, expected: Any) -> None:
    assert native(engine, source) == expected


# -- uuid -------------------------------------------------------------------------------------


def test_uuid_is_a_fresh_time_ordered_uuid(engine: TemplateEngine) -> None:
    before = time.time_ns() // 1_000_000
    values = [native(engine, "{{ uuid() }}") for _ in range(50)]
    after = time.time_ns() // 1_000_000
    assert len(set(values)) == 50
    for value in values:
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value
        )
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    assert re.fullmatch(r"id-[0-9a-f-]{36}", text(engine, "id-{{ uuid() }}"))


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' | substringBefore }}", "substringBefore: expects an argument 'separator'"),
        (
            "{{ 'a' | substringAfter(1) }}",
            "substringAfter: the argument 'separator' must be text, got a number",
        ),
        ("{{ 'a' | split }}", "split: expects an argument 'delimiter'"),
        ("{{ 1 | split(',') }}", "split: expected text, got a number"),
        (
            "{{ 'a' | split('(') }}",
            "split: invalid delimiter '(': missing ) at position 1",
        ),
        ("{{ 'a' | split(',', 'x') }}", "split: the argument 'limit' must be a number, got text"),
        (
            "{{ 'a' | replace('x') }}",
            "replace: expects a map ({'old': 'new'}) or two arguments (old, new)",
        ),
        (
            "{{ 'a' | replace(replace_pairs='x') }}",
            "replace: expects a map of replacements, got text",
        ),
        (
            "{{ 'a' | replace({'(': 'x'}, regexp=true) }}",
            "replace: invalid regex '(': missing ) at position 1",
        ),
        ("{{ 'a' | regexMatch }}", "regexMatch: expects an argument 'regex'"),
        (
            "{{ 'a' | regexMatch('[a') }}",
            "regexMatch: invalid regex '[a': unterminated character set at position 2",
        ),
        ("{{ 'a' | regexReplace('a') }}", "regexReplace: expects an argument 'replacement'"),
        ("{{ 'a' | regexReplace('a', '$2') }}", "regexReplace: no group 2 in the regex (it has 0)"),
        (
            "{{ 'a' | regexReplace('a', '${n}') }}",
            "regexReplace: no group named 'n' in the regex",
        ),
        (
            "{{ 'a' | regexReplace('a', 'x$') }}",
            "regexReplace: illegal group reference in replacement 'x$'",
        ),
        (
            "{{ 'a' | regexReplace('a', 'x\\\\') }}",
            "regexReplace: character to be escaped is missing in replacement 'x\\\\'",
        ),
        (
            "{{ 'a' | regexExtract('a', 1) }}",
            "regexExtract: group 1 is out of bounds: the regex has 0 group(s)",
        ),
        (
            "{{ 'a' | regexExtract('a', -1) }}",
            "regexExtract: group -1 is out of bounds: it must be 0 or more",
        ),
        ("{{ 'a' | escapeChar }}", "escapeChar: expects an argument 'type'"),
        (
            "{{ 'a' | escapeChar('html') }}",
            "escapeChar: unknown type 'html' (expected 'single', 'double' or 'shell')",
        ),
        ("{{ 'a\\nb' | indent }}", "indent: expects an argument 'amount'"),
        ("{{ 'a\\nb' | indent(-1) }}", "indent: the amount must be 0 or more, got -1"),
        (
            "{{ 'a\\nb' | indent(1.5) }}",
            "indent: the argument 'amount' must be a whole number, got 1.5",
        ),
        (
            "{{ 'a\\nb' | nindent(2, true) }}",
            "nindent: the argument 'prefix' must be text, got a boolean",
        ),
        ("{{ 'é' | base64decode }}", "base64decode: not valid Base64: 'é'"),
        ("{{ 'dGVzdA=' | base64decode }}", "base64decode: not valid Base64: 'dGVzdA='"),
        ("{{ 'a' | base64decode }}", "base64decode: not valid Base64: 'a'"),
        ("{{ 1 | base64decode }}", "base64decode: expected text, got a number"),
        ("{{ 1 | sha256 }}", "sha256: expected text to hash, got a number"),
        ("{{ [1] | md5 }}", "md5: expected text to hash, got a list"),
        (
            "{{ '100%' | urldecode }}",
            "urldecode: invalid escape '%' (expected % and two hex digits)",
        ),
        (
            "{{ '%zz' | urldecode }}",
            "urldecode: invalid escape '%zz' (expected % and two hex digits)",
        ),
        ("{{ 1 | urldecode }}", "urldecode: expected text, got a number"),
        ("{{ 'abc' | chunk(2) }}", "chunk: expected a list, got text"),
        ("{{ [1] | chunk }}", "chunk: expects an argument 'size'"),
        ("{{ [1] | chunk(0) }}", "chunk: the size must be greater than 0, got 0"),
        ("{{ [1] | chunk('2') }}", "chunk: the argument 'size' must be a number, got text"),
        ("{{ 'abc' | distinct }}", "distinct: expected a list, got text"),
        ("{{ {'a': 1} | flatten }}", "flatten: expected a list, got a map"),
        ("{{ none | merge }}", "merge: the two values to merge are null"),
        ("{{ 'a' | merge([1]) }}", "merge: expected a map or a list, got text"),
        (
            "{{ [1] | merge('b') }}",
            "merge: only a map or a list can be merged into a list, got text",
        ),
        (
            "{{ {'a': 1} | merge(2) }}",
            "merge: only a map or a list can be merged into a map, got a number",
        ),
        ("{{ {'a': 1} | merge([[1]]) }}", "merge: a list cannot be a key of a map"),
        ("{{ [1, 'a'] | rsort }}", "rsort: cannot compare a number and text"),
        ("{{ 'x' | rsort }}", "rsort: expected a list, got text"),
        (
            "{{ yaml('a: [1') }}",
            "yaml: not valid YAML (while parsing a flow sequence, expected ',' or ']', "
            "but got '<stream end>' at line 1, column 6)",
        ),
        (
            "{{ yaml('a: 1\\n---\\nb: 2') }}",
            "yaml: not valid YAML (expected a single document in the stream, but found another "
            "document at line 2, column 1)",
        ),
        ("{{ yaml(1) }}", "yaml: expects YAML text, got a number"),
        ("{{ yaml() }}", "yaml: expects YAML text, got null"),
        ("{{ 'x' | timestampMilli }}", "not a date or datetime: 'x'"),
    ],
)
def test_bad_input_fails_with_one_clear_message(
    engine: TemplateEngine, source: str, message: str
) -> None:
    assert error(engine, source) == message


NEW_FILTERS = [
    "jq('.')", "yaml", "number", "className", "string", "split(',')", "substringBefore('.')",
    "substringAfter('.')", "substringBeforeLast('.')", "substringAfterLast('.')",
    "replace({'a': 'b'})", "replace('a', 'b')", "regexMatch('a')", "regexReplace('a', 'b')",
    "regexExtract('a')", "escapeChar('shell')", "indent(2)", "nindent(2)", "base64encode",
    "base64decode", "md5", "sha1", "sha256", "sha512", "urlencode", "urldecode", "chunk(2)",
    "distinct", "uniq", "flatten", "merge([1])", "rsort", "timestampMilli", "timestampMicro",
    "timestampNano",
]  # fmt: skip


@pytest.mark.parametrize("call", NEW_FILTERS)
def test_an_undefined_input_is_the_usual_error(engine: TemplateEngine, call: str) -> None:
    assert error(engine, "{{ nope | " + call + " }}") == "'nope' is undefined"
    assert error(engine, "{{ inputs.nope.deep | " + call + " }}") == "'nope.deep' is undefined"


@pytest.mark.parametrize(
    "source", ["{{ uuid.__globals__ }}", "{{ yaml.__globals__ }}", "{{ uuid.__module__ }}"]
)
def test_new_functions_stay_in_the_sandbox(engine: TemplateEngine, source: str) -> None:
    with pytest.raises(TemplateError, match=r"not allowed|unsafe"):
        native(engine, source)


def test_new_filters_pass_validation(engine: TemplateEngine) -> None:
    for call in NEW_FILTERS:
        engine.check("{{ x | " + call + " }}")


def test_every_new_name_is_documented() -> None:
    page = DOCS.read_text("utf-8")
    table = page.split("## Functions, filters and tests", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Za-z0-9]+)", table, re.MULTILINE))
    names = {call.split("(")[0] for call in NEW_FILTERS}
    assert names | {"uuid", "yaml"} <= documented, sorted(names - documented)


def test_nanosecond_timestamps_lose_no_precision() -> None:
    # The nanosecond filters count from the epoch without floating-point rounding.
    moment = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
    engine = TemplateEngine()
    value = asyncio.run(engine.render_native("{{ m | timestampNano }}", {"m": moment}))
    assert value == (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    assert value == 9223372036854775000


def _documented_examples() -> list[tuple[str, str, str]]:
    """(name, template, result) of the table rows of the names above that show a result."""
    names = {call.split("(")[0] for call in NEW_FILTERS} | {"uuid", "yaml"}
    rows = []
    for line in DOCS.read_text("utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 4 or "→" not in cells[3]:
            continue
        name = re.match(r"`([A-Za-z0-9]+)", cells[0])
        example = re.fullmatch(r"`(.*)` → `(.*)`", cells[3])
        if name and example and name.group(1) in names:
            rows.append((name.group(1), example.group(1).replace("\\|", "|"), example.group(2)))
    return rows


DOCUMENTED = _documented_examples()


def test_the_table_has_an_example_with_its_result_for_the_new_names() -> None:
    shown = {name for name, _, _ in DOCUMENTED}
    assert {call.split("(")[0] for call in NEW_FILTERS} | {"uuid", "yaml"} - {"uuid"} <= shown
    assert len(DOCUMENTED) >= 35


@pytest.mark.parametrize(("name", "source", "result"), DOCUMENTED, ids=[r[0] for r in DOCUMENTED])
def test_documented_examples_render_as_documented(
    engine: TemplateEngine, name: str, source: str, result: str
) -> None:
    assert asyncio.run(engine.render(source, {"d": "2024-03-07T14:05:09Z"})) == result


def test_yaml_function_takes_kestras_argument_name(engine: TemplateEngine) -> None:
    assert native(engine, "{{ yaml(yaml='a: [1]') }}") == {"a": [1]}
