"""Flows run end to end by the real Runner over SQLite, with the plugin registered by its hook."""

from __future__ import annotations

from typing import Any

from plait.templating import masked_view

from .conftest import SECRETS, Harness


def _run_of(execution: Any, task_id: str) -> Any:
    (found,) = [r for r in execution.task_runs if r.task_id == task_id]
    return found


async def test_working_directory_python_writes_and_shell_reads(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: wd
        namespace: test.scripts
        tasks:
          - id: wdir
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: write
                type: plait.scripts.python.Script
                script: |
                  with open("shared.txt", "w") as f:
                      f.write("written by python\\n")
                  print("wrote it")
              - id: read
                type: io.kestra.plugin.scripts.shell.Commands
                outputFiles: [shared.txt]
                commands:
                  - cat shared.txt
                  - echo "::{\\"outputs\\":{\\"words\\":$(wc -w < shared.txt)}}::"
        outputs:
          - id: words
            type: INT
            value: "{{ outputs.read.vars.words }}"
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    assert ex.outputs == {"words": 3}
    logs = await harness.repo.logs(ex.id)
    assert [(r.task_id, r.message) for r in logs if r.level == "INFO"] == [
        ("write", "wrote it"),
        ("read", "written by python"),
    ]
    uri = _run_of(ex, "read").outputs["outputFiles"]["shared.txt"]
    assert uri.startswith("plait:///test/scripts/wd/executions/")


async def test_files_and_vars_flow_between_python_shell_and_node(
    harness: Harness, node: str
) -> None:
    ex = await harness.run(
        """
        id: pipeline
        namespace: test.scripts
        inputs:
          - id: n
            type: INT
            defaults: 4
        tasks:
          - id: produce
            type: io.kestra.plugin.scripts.python.Script
            outputFiles: ["*.csv"]
            script: |
              import json
              rows = [f"{i},{i * i}" for i in range({{ inputs.n }})]
              open("squares.csv", "w").write("\\n".join(rows) + "\\n")
              print("::" + json.dumps({"outputs": {"rows": len(rows)}}) + "::")
          - id: total
            type: plait.scripts.shell.Script
            inputFiles:
              data.csv: "{{ outputs.produce.outputFiles['squares.csv'] }}"
            script: |
              sum=$(cut -d, -f2 data.csv | paste -sd+ - | bc)
              echo "sum is $sum"
              echo "::{\\"outputs\\":{\\"sum\\":$sum}}::"
          - id: report
            type: io.kestra.plugin.scripts.node.Commands
            env:
              ROWS: "{{ outputs.produce.vars.rows }}"
              SUM: "{{ outputs.total.vars.sum }}"
            inputFiles:
              main.js: |
                const line = `${process.env.ROWS} rows, sum ${process.env.SUM}`;
                console.log('::' + JSON.stringify({outputs: {line}}) + '::');
            commands:
              - node main.js
        outputs:
          - id: line
            type: STRING
            value: "{{ outputs.report.vars.line }}"
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    assert ex.outputs == {"line": "4 rows, sum 14"}
    assert _run_of(ex, "produce").outputs["exitCode"] == 0


async def test_a_secret_passed_in_env_is_masked_in_logs_and_outputs(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: secret
        namespace: test.scripts
        tasks:
          - id: leak
            type: plait.scripts.shell.Commands
            env:
              VALUE: "{{ secret('API_TOKEN') }}"
            commands:
              - echo "the value is $VALUE"
              - echo "$VALUE" >&2
              - echo "::{\\"outputs\\":{\\"echo\\":\\"$VALUE\\"}}::"
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    secret = SECRETS["API_TOKEN"]
    logs = await harness.repo.logs(ex.id)
    messages = [r.message for r in logs if r.task_id == "leak"]
    assert messages == ["the value is ******", "******"]
    stored = await harness.reload(ex)
    assert secret not in stored.model_dump_json()
    # Sealed at rest (shown ******), intact for the tasks after this one.
    assert set(_run_of(stored, "leak").outputs["vars"]["echo"]) == {"$secret", "$key"}
    assert masked_view(_run_of(stored, "leak").outputs["vars"]) == {"echo": "******"}
    assert _run_of(ex, "leak").outputs["vars"] == {"echo": secret}


async def test_log_lines_reach_the_execution_while_the_script_runs(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: stream
        namespace: test.scripts
        tasks:
          - id: slow
            type: plait.scripts.python.Script
            script: |
              import time
              print("first")
              time.sleep(0.7)
              print("second")
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    logs = {r.message: r.timestamp for r in await harness.repo.logs(ex.id)}
    assert (logs["second"] - logs["first"]).total_seconds() >= 0.5


async def test_a_failing_script_fails_its_task_with_the_exit_code(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: failing
        namespace: test.scripts
        tasks:
          - id: bad
            type: plait.scripts.shell.Commands
            commands:
              - echo "about to fail"
              - echo "disk full" >&2
              - exit 4
          - id: never
            type: plait.core.Log
            message: unreachable
        """
    )
    assert ex.state.value == "FAILED"
    error = _run_of(ex, "bad").error
    assert error.startswith("the process exited with code 4: disk full")
    assert not [r for r in ex.task_runs if r.task_id == "never"]


async def test_a_flood_of_output_is_stored_within_the_log_limits(harness: Harness) -> None:
    # 200k lines and one 20 MB line used to be stored in full: now 10,000 lines and a closing
    # count for the first task run, and one line cut to 64 KiB with a marker for the second.
    ex = await harness.run(
        """
        id: flood
        namespace: test.scripts
        tasks:
          - id: many
            type: plait.scripts.shell.Commands
            commands:
              - seq 1 200000
          - id: wide
            type: plait.scripts.shell.Commands
            commands:
              - head -c 20000000 /dev/zero | tr '\\0' x; echo; echo after
        """
    )
    assert ex.state.value == "SUCCESS", ex.error
    logs = await harness.repo.logs(ex.id)
    many = [r for r in logs if r.task_id == "many"]
    assert len(many) == 10_001
    assert [r.message for r in many[:2]] == ["1", "2"]
    assert many[9_999].message == "10000"
    dropped = sum(len(str(n)) for n in range(10_001, 200_001))
    assert many[-1].level == "WARN"
    assert many[-1].message == (
        f"190000 more log lines ({dropped} bytes) were dropped: limit "
        "log_max_lines_per_task_run (10000) reached, set with "
        "PLAIT_LIMIT_LOG_MAX_LINES_PER_TASK_RUN"
    )
    wide = [r.message for r in logs if r.task_id == "wide"]
    assert wide == ["x" * 65_536 + f" \u2026 [{20_000_000 - 65_536} bytes cut]", "after"]
