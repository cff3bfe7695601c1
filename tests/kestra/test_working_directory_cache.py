"""WorkingDirectory's ``cache``: the second execution of a flow starts from the files the
first one cached (and not from an expired cache), run with ``plait run`` in one home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from plait.cli import cli

FLOWS = Path(__file__).parent / "workdir_cache"


def run(home: Path, flow: str) -> dict[str, Any]:
    args = ["run", str(FLOWS / flow), "--json", "--home", str(home)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    execution: dict[str, Any] = json.loads(result.stdout)
    return {r["taskId"]: r["outputs"] for r in execution["taskRuns"]}


@pytest.mark.parametrize(
    ("flow", "second"),
    [("caching_files.yaml", {"runs": 2, "other": 1}), ("caching_files_expired.yaml", None)],
)
def test_the_cached_folder_comes_back_in_the_next_execution(
    tmp_path: Path, flow: str, second: dict[str, int] | None
) -> None:
    home = tmp_path / "home"
    assert run(home, flow)["install"]["vars"] == {"runs": 1, "other": 1}
    expected = second or {"runs": 1, "other": 1}  # expired: nothing restored
    assert run(home, flow)["install"]["vars"] == expected
