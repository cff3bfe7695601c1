"""A task's ``timeout`` and its retry's ``maxAttempts`` may be templates (Kestra's Property);
anything else that is not a duration or a number is refused at validation, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from plait.cli import cli

FLOW = """\
id: bad
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    timeout: 5m", "tasks[0].timeout: not a valid ISO-8601 duration: '5m' (write PT5M)"),
        (
            "    retry: {type: constant, interval: PT1S, maxAttempts: many}",
            "maxAttempts must be a whole number, got 'many'",
        ),
        ("    retry: {type: constant, interval: PT1S, maxAttempts: '0'}", "at least 1"),
    ],
)
def test_a_bad_timeout_or_max_attempts_is_refused(extra: str, message: str, tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(FLOW.format(extra=extra))
    result = CliRunner().invoke(cli, ["flows", "validate", str(flow)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_flow_retry_takes_no_template(tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(
        FLOW.format(extra="")
        + "retry: {type: constant, interval: PT1S, maxAttempts: '{{ inputs.n }}'}\n"
    )
    result = CliRunner().invoke(cli, ["flows", "validate", str(flow)])
    assert result.exit_code == 1
    assert "a flow's retry takes a number of attempts, not a template" in result.output


@pytest.mark.parametrize(
    ("limit", "error"),
    [("soon", "timeout '{{ inputs.limit }}' rendered 'soon', not a duration")],
)
def test_a_timeout_rendering_no_duration_fails_the_task(
    limit: str, error: str, tmp_path: Path
) -> None:
    flow = tmp_path / "t.yaml"
    flow.write_text(
        "id: t\nnamespace: company.team\ninputs:\n  - {id: limit, type: STRING}\ntasks:\n"
        "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0S\n"
        '    timeout: "{{ inputs.limit }}"\n'
    )
    result = CliRunner().invoke(
        cli, ["run", str(flow), "--home", str(tmp_path / "h"), "-i", f"limit={limit}"]
    )
    assert result.exit_code == 1
    assert error in result.output
