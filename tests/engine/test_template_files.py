"""Template functions provided by the engine: read, fileSize, fileExists, isFileEmpty,
errorLogs and currentEachOutput (Kestra's)."""

from __future__ import annotations

from plait.engine._files import READ_LIMIT
from plait.flows import State

from . import testplugin
from .conftest import Harness, runs


async def test_file_functions_read_what_a_task_stored(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: files
        namespace: t
        tasks:
          - {id: csv, type: test.Store, name: out.csv, content: "a,b\\n1,2\\n"}
          - {id: empty, type: test.Store, name: empty.txt}
          - id: show
            type: plait.core.OutputValues
            values:
              text: "{{ read(outputs.csv.value) }}"
              size: "{{ fileSize(outputs.csv.value) }}"
              exists: "{{ fileExists(outputs.csv.value) }}"
              missing: "{{ fileExists(outputs.csv.value ~ '.gone') }}"
              empty: "{{ isFileEmpty(outputs.empty.value) }}"
              full: "{{ isFileEmpty(outputs.csv.value) }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "show")[0].outputs["values"] == {
        "text": "a,b\n1,2\n",
        "size": 8,
        "exists": True,
        "missing": False,
        "empty": True,
        "full": False,
    }


async def test_file_functions_refuse_what_the_execution_cannot_read(harness: Harness) -> None:
    cases = {
        "{{ read('plait:///other/flow/executions/x/f.txt') }}": (
            "plait:///other/flow/executions/x/f.txt is outside this execution's storage; "
            "access refused"
        ),
        "{{ read('data/f.txt') }}": (
            "read(): expected an internal storage URI (plait:///...), got 'data/f.txt'"
        ),
        "{{ read(outputs.bin.value) }}": "the file is not UTF-8 text",
        "{{ read(outputs.big.value) }}": f"templates read at most {READ_LIMIT // 2**20} MiB",
        "{{ fileSize(outputs.bin.value ~ 'x') }}": "does not exist",
        "{{ fileExists('plait:///t/other/executions/y/z') }}": "access refused",
    }
    for template, message in cases.items():
        ex = await harness.run(
            f"""
            id: refused
            namespace: t
            tasks:
              - {{id: bin, type: test.Store, name: b.bin, binary: true}}
              - id: big
                type: test.Store
                name: big.txt
                content: "0123456789abcdef"
                repeat: {READ_LIMIT // 16 + 1}
              - id: use
                type: plait.core.Log
                message: "{template}"
            """
        )
        assert ex.state is State.FAILED, template
        error = runs(ex, "use")[0].error
        assert error is not None
        assert message in error, (template, error)
        assert "property 'message'" in error


async def test_error_logs_lists_the_executions_error_lines(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: alerting
        namespace: t
        tasks:
          - {id: fine, type: plait.core.Log, message: all good}
          - {id: broken, type: plait.core.Fail, errorMessage: "upstream answered 503"}
        errors:
          - id: alert
            type: plait.core.OutputValues
            values:
              count: "{{ errorLogs() | length }}"
              first: "{{ errorLogs()[0] }}"
        """
    )
    assert ex.state is State.FAILED
    values = runs(ex, "alert")[0].outputs["values"]
    assert values["count"] == 1
    first = values["first"]
    assert first["message"] == "upstream answered 503"
    assert first["taskId"] == "broken"
    assert first["taskRunId"] == runs(ex, "broken")[0].id
    assert (first["namespace"], first["flowId"], first["executionId"]) == ("t", "alerting", ex.id)
    assert first["level"] == "ERROR"
    assert first["attemptNumber"] == 1


async def test_current_each_output_picks_the_current_loop_values(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: each_output
        namespace: t
        tasks:
          - id: outer
            type: plait.core.ForEach
            values: ["a", "b"]
            tasks:
              - id: inner
                type: plait.core.ForEach
                values: [1, 2]
                tasks:
                  - id: first
                    type: plait.core.Return
                    format: "{{ parent.taskrun.value }}-{{ taskrun.value }}"
                  - id: second
                    type: test.Record
                    value: "{{ currentEachOutput(outputs.first).value }}"
          - id: grouped
            type: plait.core.ForEach
            values: ["g"]
            tasks:
              - {id: made, type: plait.core.Return, format: "made {{ taskrun.value }}"}
              - id: block
                type: plait.core.Sequential
                tasks:
                  - id: deeper
                    type: test.Record
                    value: "{{ currentEachOutput(outputs.made).value }}"
          - id: outside
            type: plait.core.Log
            message: "{{ currentEachOutput(outputs.first) }}"
        """
    )
    # inside a Sequential inside the loop too
    assert testplugin.CALLS["record"] == ["a-1", "a-2", "b-1", "b-2", "made g"]
    assert ex.state is State.FAILED
    error = runs(ex, "outside")[0].error
    assert error is not None
    assert "currentEachOutput() is only available inside a ForEach" in error
