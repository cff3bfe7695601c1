"""WorkingDirectory's ``outputFiles`` beyond the documented example: a pattern matching nothing
gives an empty map, and a pattern leaving the directory fails the task (nothing uploaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from plait.cli import cli

FLOW = """
id: wd_outputs
namespace: company.team
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: {patterns}
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - mkdir -p out && echo kept > out/a.txt && echo other > b.log
  - id: after
    type: io.kestra.plugin.core.output.OutputValues
    values:
      files: "{{{{ outputs.wdir.outputFiles | length }}}}"
"""


def run(tmp_path: Path, patterns: list[str]) -> dict[str, Any]:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.format(patterns=json.dumps(patterns)), "utf-8")
    args = ["run", str(flow), "--json", "--home", str(tmp_path / "home")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    execution: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return execution


def runs(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["taskId"]: r for r in execution["taskRuns"]}


def test_globs_select_files_by_relative_path(tmp_path: Path) -> None:
    execution = run(tmp_path, ["out/*.txt", "*.csv"])
    assert execution["state"] == "SUCCESS"
    by_id = runs(execution)
    assert list(by_id["wdir"]["outputs"]["outputFiles"]) == ["out/a.txt"]
    assert by_id["after"]["outputs"]["values"]["files"] == 1


def test_a_pattern_matching_nothing_gives_an_empty_map(tmp_path: Path) -> None:
    execution = run(tmp_path, ["*.csv"])
    assert execution["state"] == "SUCCESS"
    by_id = runs(execution)
    assert by_id["wdir"]["outputs"] == {"outputFiles": {}}
    assert by_id["after"]["outputs"]["values"]["files"] == 0


def test_a_pattern_leaving_the_directory_fails_the_task(tmp_path: Path) -> None:
    execution = run(tmp_path, ["../*"])
    assert execution["state"] == "FAILED"
    by_id = runs(execution)
    assert by_id["wdir"]["state"] == "FAILED"
    assert "outputFiles" in by_id["wdir"]["error"]
    assert "working directory" in by_id["wdir"]["error"]
    assert by_id["wdir"]["outputs"] == {}
    assert "after" not in by_id
