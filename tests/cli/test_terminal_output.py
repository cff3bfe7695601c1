"""Values reach the terminal escaped: no forged log line, no escape sequence drives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plait.cli._terminal import printable

PLAIT = str(Path(sys.executable).with_name("plait"))
HOSTILE = "A\n[fake] ERROR forged \x1b]0;pwned\x07 \x1b[2J \u202eZ"
RAW = ("\x1b]0;pwned", "\x1b[2J", "\x07", "\u202e")

FLOW = """\
id: esc
namespace: test
inputs:
  - id: x
    type: STRING
tasks:
  - id: log
    type: plait.core.Log
    message: "got {{ inputs.x }}"
  - id: each
    type: plait.core.ForEach
    values: ["{{ inputs.x }}"]
    tasks:
      - id: inner
        type: plait.core.Return
        format: "{{ taskrun.value }}"
  - id: boom
    type: plait.core.Fail
    errorMessage: "bad {{ inputs.x }}"
"""


def _plait(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLAIT_HOME": str(tmp_path / "home"), "COLUMNS": "1000"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [PLAIT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _assert_safe(text: str) -> None:
    for raw in RAW:
        assert raw not in text
    assert not any(line.startswith("[fake]") for line in text.splitlines()), text
    assert "\\n[fake] ERROR forged \\x1b]0;pwned\\x07 \\x1b[2J \\u202eZ" in text


def test_hostile_values_are_escaped_in_every_terminal_view(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    done = _plait(tmp_path, "run", str(flow), "-i", f"x={HOSTILE}")
    assert done.returncode == 1
    _assert_safe(done.stderr)  # live log lines, the tree, the outputs and the error
    listed = json.loads(_plait(tmp_path, "executions", "list", "--json").stdout)
    execution_id = listed[0]["id"]
    for view in (("show",), ("logs",)):
        shown = _plait(tmp_path, "executions", *view, execution_id)
        assert shown.returncode == 0, shown.stderr
        _assert_safe(shown.stdout)
    # The store keeps the real value.
    records = json.loads(_plait(tmp_path, "executions", "logs", execution_id, "--json").stdout)
    assert f"got {HOSTILE}" in [r["message"] for r in records]
    stored = json.loads(_plait(tmp_path, "executions", "show", execution_id, "--json").stdout)
    assert stored["error"] == f"task 'boom' failed: bad {HOSTILE}"


def test_an_error_message_holding_a_value_is_escaped(tmp_path: Path) -> None:
    done = _plait(tmp_path, "run", str(tmp_path / "k\x1b[2J\x1b]0;pwned\x07\n[fake] x"))
    assert done.returncode == 1
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    assert "k\\x1b[2J\\x1b]0;pwned\\x07\\n[fake] x: no such flow file" in done.stderr
    assert "\n[fake]" not in done.stderr


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plain text, tabs\tand ünïcode ✓", "plain text, tabs\tand ünïcode ✓"),
        ("a\nb\r\n", "a\\nb\\r\\n"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
        ("abc\u202edef\u2066", "abc\\u202edef\\u2066"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_printable(value: str, shown: str) -> None:
    assert printable(value) == shown
