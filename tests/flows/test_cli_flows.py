import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from plait.cli import cli

INVALID = Path(__file__).parent / "invalid"
VALID = "id: a\nnamespace: n\ntasks:\n  - id: x\n    type: plait.core.Log\n    message: hi\n"


def test_validate_reports_ok_and_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    result = CliRunner().invoke(cli, ["flows", "validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok {tmp_path / 'good.yaml'}"


def test_validate_prints_every_problem_and_exits_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((INVALID / "several_problems.yaml").read_text())
    result = CliRunner().invoke(cli, ["flows", "validate", str(bad)])
    assert result.exit_code == 1
    lines = [ln for ln in result.stdout.splitlines() if ln]
    assert len(lines) == len((INVALID / "several_problems.expected").read_text().splitlines())
    assert all(ln.startswith(f"{bad}:") for ln in lines)


def test_validate_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["flows", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.output
    assert "Traceback" not in result.output


def test_schema_covers_every_task_type_and_validates_a_flow() -> None:
    result = CliRunner().invoke(cli, ["flows", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    branches = schema["$defs"]["Task"]["oneOf"]
    names = {schema["$defs"][b["$ref"].rsplit("/", 1)[1]]["title"] for b in branches}
    assert {"plait.core.Log", "plait.core.Return", "plait.core.OutputValues"} <= names
    log = schema["$defs"]["task__plait_core_Log"]
    assert "io.kestra.plugin.core.log.Log" in log["properties"]["type"]["enum"]
    assert log["additionalProperties"] is False


def test_the_real_command_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: a\nnamespace: n\ntasks:\n  - id: x\n    type: plait.core.Lgo\n")
    plait = Path(sys.executable).parent / "plait"
    proc = subprocess.run(
        [str(plait), "flows", "validate", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"{bad}:5:11: tasks[0].type: unknown task type 'plait.core.Lgo'" in proc.stdout
