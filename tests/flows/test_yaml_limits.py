"""Every YAML text Plait reads is bounded: aliases, expanded size, depth, recursion, file size.

The hostile files (billion laughs, a recursive anchor, a Sequential nested 2,000 deep) are also
in the invalid/ corpus and are run through the real CLI at the end, with a timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from plait.flows import Flow, coerce_inputs, load_flow, parse, read_flow_file
from plait.limits import override_limits
from plait.plugins import TypeRegistry
from plait.safeyaml import YamlLimitError, safe_load
from plait.templating import TemplateEngine, TemplateRenderError
from plait_sdk import UserError, ValidationError

INVALID = Path(__file__).parent / "invalid"
LAUGHS = (INVALID / "yaml_billion_laughs.yaml").read_text()
TASKS = "tasks:\n  - id: x\n    type: plait.core.Log\n    message: hi\n"


def nested_sequentials(depth: int) -> str:
    """A flow whose only task is ``depth`` Sequentials one inside the other (in flow style)."""
    opening = "".join(
        f'{{"id":"s{level}","type":"plait.core.Sequential","tasks":['
        for level in reversed(range(depth))
    )
    leaf = '{"id":"leaf","type":"plait.core.Log","message":"hi"}'
    return f"id: deep\nnamespace: test\ntasks:\n  - {opening}{leaf}{']}' * depth}\n"


def refused(text: str) -> UserError:
    with pytest.raises(UserError) as caught:
        parse(text, file="f.yaml")
    assert not isinstance(caught.value, ValidationError)
    return caught.value


# -- aliases are still YAML ------------------------------------------------------------------


def test_anchors_aliases_and_merge_keys_within_the_limits_still_work() -> None:
    doc = parse(
        "base: &b {retry: 3, tags: [a, b]}\none: *b\ntwo:\n  <<: *b\n  name: two\nlist: [*b, *b]\n"
    )
    assert doc.data["one"] == {"retry": 3, "tags": ["a", "b"]}
    assert doc.data["two"] == {"retry": 3, "tags": ["a", "b"], "name": "two"}
    assert doc.data["list"] == [doc.data["one"], doc.data["one"]]


# -- alias count -----------------------------------------------------------------------------


def test_alias_uses_are_counted_up_to_the_limit() -> None:
    text = "v: &v 1\nmany: [" + ", ".join(["*v"] * 5) + "]\n"
    with override_limits(yaml_max_aliases=5):
        assert parse(text).data["many"] == [1] * 5
    with override_limits(yaml_max_aliases=4):
        error = refused(text)
    # The fifth alias, where it is written.
    assert (error.line, error.column) == (2, 24)
    assert error.reason == (
        "more than 4 aliases (*name) (limit yaml_max_aliases, set with "
        "PLAIT_LIMIT_YAML_MAX_ALIASES)"
    )


# -- expanded size ---------------------------------------------------------------------------


def test_billion_laughs_is_refused_at_the_alias_that_goes_over() -> None:
    error = refused(LAUGHS)
    assert (error.line, error.column) == (8, 11)  # the first *f of g: ten *e in, 9**6 values
    assert "more than 200000 values once aliases are expanded" in error.reason
    assert "PLAIT_LIMIT_YAML_MAX_NODES" in error.reason


def test_nodes_are_counted_with_aliases_expanded_exactly() -> None:
    # doc mapping, 2 keys, the list and its 3 items, 2 aliases of 4 nodes each: 1+2+4+8 = 15.
    text = "a: &a [1, 2, 3]\nb: [*a, *a]\n"
    with override_limits(yaml_max_nodes=16):
        parse(text)
    with override_limits(yaml_max_nodes=15):
        error = refused(text)
    assert (error.line, error.column) == (2, 9)  # the second *a
    assert "more than 15 values" in error.reason


def test_expanded_bytes_are_bounded_by_the_file_size_limit() -> None:
    # A short text whose aliases repeat one long string: small to read, huge once expanded.
    text = "s: &s " + "x" * 1000 + "\nmany: [" + ", ".join(["*s"] * 9) + "]\n"
    with override_limits(flow_file_max_bytes=len(text) + 10):
        error = refused(text)
    assert "bytes once aliases are expanded" in error.reason
    assert "PLAIT_LIMIT_FLOW_FILE_MAX_BYTES" in error.reason


# -- recursion and depth ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: &a [1, *a]\n", (1, 11)),
        ("a: &a {x: 1, y: *a}\n", (1, 17)),
        ("a: &a\n  <<: *a\n", (2, 7)),
        ("a: &a [[[*a]]]\n", (1, 10)),
    ],
)
def test_a_recursive_alias_is_refused_where_it_is_written(
    text: str, where: tuple[int, int]
) -> None:
    error = refused(text)
    assert (error.line, error.column) == where
    assert error.reason.startswith("recursive alias *a: it refers to the anchor &a (line 1)")


def test_nesting_depth_is_bounded() -> None:
    with override_limits(yaml_max_depth=3):
        parse("a: [[1]]\n")  # mapping, list, list: 3 levels
        error = refused("a: [[[1]]]\n")
    assert (error.line, error.column) == (1, 6)
    assert error.reason == (
        "nested more than 3 levels deep (limit yaml_max_depth, set with PLAIT_LIMIT_YAML_MAX_DEPTH)"
    )


def test_depth_counts_what_an_alias_brings_in() -> None:
    # Each level is allowed where it is written, but *a puts three more levels under two.
    text = "a: &a [[[1]]]\nb: [*a]\n"
    with override_limits(yaml_max_depth=4):
        error = refused(text)
    assert (error.line, error.column) == (2, 5)
    assert "nested more than 4 levels deep" in error.reason


def test_a_sequential_nested_2000_deep_is_a_located_error(registry: TypeRegistry) -> None:
    text = nested_sequentials(2000)
    with pytest.raises(UserError) as caught:
        load_flow(text, registry=registry, file="deep.yaml")
    assert str(caught.value).startswith("deep.yaml:4:")
    assert "nested more than 100 levels deep" in str(caught.value)


def test_depth_within_the_limit_still_loads(registry: TypeRegistry) -> None:
    flow = load_flow(nested_sequentials(45), registry=registry)
    assert flow.tasks[0].id == "s44"


def test_a_depth_limit_raised_past_the_stack_is_still_a_user_error(
    registry: TypeRegistry,
) -> None:
    with override_limits(yaml_max_depth=1_000_000), pytest.raises(UserError) as caught:
        load_flow(nested_sequentials(2000), registry=registry, file="deep.yaml")
    assert "nested too deeply to be read" in str(caught.value)
    assert "PLAIT_LIMIT_YAML_MAX_DEPTH" in str(caught.value)


# -- scalars -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "1" * 5000,  # Python refuses to read it: was an internal ValueError
        "1" + ":59" * 100_000,  # YAML 1.1 base 60: quadratic time to compute
        "1" * 4000 + "." + "5" * 400,
    ],
)
def test_a_number_too_long_to_read_is_a_located_error(number: str) -> None:
    error = refused(f"id: a\nvalue: {number}\n")
    assert (error.line, error.column) == (2, 8)
    assert error.reason == "a number of more than 4300 characters (quote it to make it text)"


def test_a_long_number_within_the_bound_still_reads() -> None:
    assert parse("v: " + "1" + ":59" * 1400).data["v"] > 60**1400
    assert parse(f'v: "{"1" * 5000}"').data["v"] == "1" * 5000


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: !!int abc", "invalid YAML: cannot read 'abc' as !!int"),
        ("a: !!timestamp bad", "invalid YAML: cannot read 'bad' as !!timestamp"),
        ("a: !!bool maybe", "invalid YAML: cannot read 'maybe' as !!bool"),
        ("a: !!python/name:os.system x", "unknown tag !!python/name:os.system"),
        ("a: !local x", "unknown tag !local"),
    ],
)
def test_a_value_that_does_not_fit_its_tag_is_a_located_error(text: str, reason: str) -> None:
    # These were internal errors (ValueError, AttributeError, KeyError, ConstructorError).
    error = refused(text)
    assert (error.line, error.column, error.reason) == (1, 4, reason)


def test_a_python_tag_on_a_collection_builds_nothing() -> None:
    doc = parse("a: !!python/object/apply:os.system ['echo pwned']\n")
    assert doc.data == {"a": ["echo pwned"]}  # read as the plain list it is written as


# -- file size -------------------------------------------------------------------------------


def test_a_text_over_the_file_size_limit_is_refused() -> None:
    with override_limits(flow_file_max_bytes=100):
        parse("k: " + "x" * 90)
        error = refused("k: " + "é" * 50)  # 53 characters, 103 bytes
    assert error.reason == (
        "the file is larger than 100 bytes (limit flow_file_max_bytes, set with "
        "PLAIT_LIMIT_FLOW_FILE_MAX_BYTES)"
    )


def test_reading_a_flow_file_stops_at_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(1 << 40)  # a sparse terabyte: reading it all would never end
    with override_limits(flow_file_max_bytes=1000), pytest.raises(UserError) as caught:
        read_flow_file(big)
    assert str(caught.value).startswith(f"{big}: the file is larger than 1000 bytes")


def test_a_flow_file_that_never_ends_is_refused() -> None:
    with pytest.raises(UserError, match="larger than"):
        read_flow_file(Path("/dev/zero"), file="zero.yaml")


# -- every YAML reader is guarded ------------------------------------------------------------


def test_a_yaml_input_is_parsed_within_the_limits() -> None:
    flow = Flow.model_validate(
        {
            "id": "f",
            "namespace": "n",
            "inputs": [{"id": "doc", "type": "YAML"}],
            "tasks": [{"id": "t", "type": "plait.core.Log", "message": "x"}],
        }
    )
    assert coerce_inputs(flow, {"doc": "a: &a [1]\nb: *a\n"}) == {"doc": {"a": [1], "b": [1]}}
    with pytest.raises(ValidationError) as caught:
        coerce_inputs(flow, {"doc": LAUGHS})
    (problem,) = caught.value.problems
    assert problem.field == "inputs.doc"
    assert str(problem).startswith(
        "inputs.doc: YAML refused: line 8, column 11: more than 200000 values once aliases "
        "are expanded (limit yaml_max_nodes"
    )
    with pytest.raises(ValidationError, match="recursive alias"):
        coerce_inputs(flow, {"doc": "a: &a [1, *a]"})


def test_the_yaml_template_function_is_parsed_within_the_limits() -> None:
    engine = TemplateEngine()
    source = "{{ yaml(text) }}"
    with pytest.raises(TemplateRenderError) as caught:
        asyncio.run(engine.render_native(source, {"text": LAUGHS}))
    assert "more than 200000 values once aliases are expanded" in caught.value.message
    with pytest.raises(TemplateRenderError, match="recursive alias"):
        asyncio.run(engine.render_native(source, {"text": "a: &a [1, *a]"}))


def test_safe_load_keeps_pyyaml_semantics_and_refuses_over_the_limits() -> None:
    assert safe_load("a: yes\nb: 2024-01-02\n") == {
        "a": True,
        "b": __import__("datetime").date(2024, 1, 2),
    }
    with pytest.raises(YamlLimitError, match="recursive alias"):
        safe_load("a: &a [1, *a]")
    with override_limits(flow_file_max_bytes=10), pytest.raises(YamlLimitError, match="larger"):
        safe_load("a: 12345678901")
    with pytest.raises(yaml.YAMLError, match="does not fit its tag"):
        safe_load("a: !!int x")


def test_no_yaml_is_read_without_the_guard() -> None:
    """Every module that loads YAML does it with the limited composer (a grep-level check)."""
    repo = Path(__file__).resolve().parents[2]
    sources = [*(repo / "core/src").rglob("*.py"), *(repo / "sdk/src").rglob("*.py")]
    sources += [p for p in (repo / "plugins").glob("*/src/**/*.py")]
    loads = re.compile(r"\b(?:yaml|pyyaml)\.(?:safe_load|load|full_load|unsafe_load)(?:_all)?\(")
    offenders = [
        str(path.relative_to(repo))
        for path in sources
        if loads.search(path.read_text("utf-8")) and "LimitedComposer" not in path.read_text()
    ]
    assert offenders == []
    assert len(sources) > 50


# -- over the real CLI -----------------------------------------------------------------------

PLAIT = Path(sys.executable).parent / "plait"


def plait(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLAIT), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "PLAIT_HOME": str(cwd / "home"), **env},
        timeout=120,  # generous on a loaded machine; the unbounded case took minutes and GBs
        check=False,
    )


HOSTILE = {
    "laughs.yaml": (LAUGHS, "8:11: more than 200000 values once aliases are expanded"),
    "recursive.yaml": (
        "id: r\nnamespace: test\nvariables:\n  a: &a [1, *a]\n" + TASKS,
        "4:13: recursive alias *a",
    ),
    "deep.yaml": (nested_sequentials(2000), "4:"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_flows_validate_refuses_a_hostile_file_in_one_line(name: str, tmp_path: Path) -> None:
    text, expected = HOSTILE[name]
    (tmp_path / name).write_text(text)
    proc = plait("flows", "validate", name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith(f"{name}:{expected}")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_run_refuses_a_hostile_file_as_a_user_error(name: str, tmp_path: Path) -> None:
    text, expected = HOSTILE[name]
    (tmp_path / name).write_text(text)
    proc = plait("run", name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"error: {name}:{expected}" in proc.stderr


def test_the_file_size_limit_is_read_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("id: a\nnamespace: n\n" + TASKS)
    proc = plait("flows", "validate", "ok.yaml", cwd=tmp_path, PLAIT_LIMIT_FLOW_FILE_MAX_BYTES="50")
    assert proc.returncode == 1
    assert proc.stdout.startswith("ok.yaml: the file is larger than 50 bytes")
    proc = plait("run", "ok.yaml", cwd=tmp_path, PLAIT_LIMIT_FLOW_FILE_MAX_BYTES="50")
    assert proc.returncode == 1
    assert "error: ok.yaml: the file is larger than 50 bytes" in proc.stderr
