"""Over the real CLI: a flow calling itself through a template stops at subflow_max_depth with
every execution FAILED, and a literal self-call is refused before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLAIT = Path(sys.executable).parent / "plait"
LOOP = """\
id: loop
namespace: test
tasks:
  - id: again
    type: plait.core.Subflow
    namespace: "{{ flow.namespace }}"
    flowId: "{{ flow.id }}"
"""


def plait(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLAIT), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "PLAIT_HOME": str(cwd / "home")},
        timeout=300,
        check=False,
    )


def test_a_templated_self_call_ends_failed_with_nothing_running(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text(LOOP)
    proc = plait("run", "loop.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "would be nested 26 subflow executions deep (limit subflow_max_depth is 25" in (
        proc.stderr
    )
    listed = plait("executions", "list", "--json", "--limit", "100", cwd=tmp_path)
    states = [e["state"] for e in json.loads(listed.stdout)]
    assert states == ["FAILED"] * 26


def test_a_literal_self_call_is_refused_before_it_runs(tmp_path: Path) -> None:
    (tmp_path / "self.yaml").write_text(
        LOOP.replace('"{{ flow.namespace }}"', "test").replace('"{{ flow.id }}"', "loop")
    )
    proc = plait("run", "self.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "self.yaml:7:13: tasks[0].flowId: recursive call" in proc.stderr
    listed = plait("executions", "list", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout) == []
