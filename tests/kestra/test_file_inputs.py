"""FILE inputs given to ``plait run`` are files, as in Kestra: ``read(inputs.f)`` gets the
content, a script's command and ``inputFiles`` get the file (flows in ``file_inputs/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from plait.cli import cli

FLOWS = Path(__file__).parent / "file_inputs"


def run(tmp_path: Path, flow: str, *inputs: str) -> tuple[int, Any, str]:
    args = ["run", str(FLOWS / flow), "--json", "--home", str(tmp_path / "home")]
    for item in inputs:
        args += ["-i", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    body = json.loads(result.stdout) if result.stdout.startswith("{") else None
    return result.exit_code, body, result.output


def outputs(execution: dict[str, Any]) -> dict[str, Any]:
    return {r["taskId"]: r["outputs"] for r in execution["taskRuns"]}


@pytest.mark.parametrize("form", ["@", ""])
def test_a_file_input_reaches_read_commands_and_input_files_as_a_file(
    tmp_path: Path, form: str
) -> None:
    data = tmp_path / "products.csv"
    data.write_text("product_id,name\n1,apple\n2,pear\n", "utf-8")
    code, execution, output = run(tmp_path, "read_file.yaml", f"file={form}{data}")
    assert code == 0, output
    assert execution["state"] == "SUCCESS"
    uri = execution["inputs"]["file"]
    assert uri.startswith("plait:///company/team/input_file/executions/")
    assert uri.endswith("/inputs/file/products.csv")
    found = outputs(execution)
    assert found["read"]["values"]["content"] == "product_id,name\n1,apple\n2,pear\n"
    assert found["cat"]["vars"] == {"rows": 3}
    assert found["python"]["vars"] == {"header": "product_id,name"}


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    code, execution, output = run(tmp_path, "read_file.yaml", f"file=@{tmp_path / 'nope.csv'}")
    assert code == 1
    assert execution is None
    assert "--input file: no such file" in output
    assert "Traceback" not in output
