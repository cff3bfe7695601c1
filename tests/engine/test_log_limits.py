"""Log volume is bounded: one line at log_line_max_bytes (cut with a marker), a task run at
log_max_lines_per_task_run / log_max_bytes_per_task_run (the rest counted in one closing line).

The realistic case, a shell script printing 200k lines and a 20 MB line, is in the scripts
plugin's tests (plugins/scripts/tests/plait_scripts_tests/test_flows.py)."""

from __future__ import annotations

from plait.engine._context import ExecutionLog, cut_line
from plait.flows import State
from plait.limits import override_limits
from plait.records import LogRecord
from plait.secrets import Masker

from .conftest import SECRETS, Harness


def messages(logs: list[LogRecord], task_id: str) -> list[str]:
    return [r.message for r in logs if r.task_id == task_id]


async def test_lines_past_the_cap_are_counted_in_one_closing_line(harness: Harness) -> None:
    with override_limits(log_max_lines_per_task_run=100):
        ex = await harness.run(
            """
            id: chatty
            namespace: t
            tasks:
              - {id: talk, type: test.Chatty, lines: 1000, width: 10}
              - {id: next, type: test.Chatty, lines: 3}
            """
        )
    assert ex.state is State.SUCCESS, ex.error
    logs = await harness.repo.logs(ex.id)
    talk = messages(logs, "talk")
    assert len(talk) == 101
    assert talk[:2] == ["0:xxxxxxxx", "1:xxxxxxxx"]
    assert talk[99] == "99:xxxxxxx"
    assert talk[100] == (
        "900 more log lines (9000 bytes) were dropped: limit log_max_lines_per_task_run (100) "
        "reached, set with PLAIT_LIMIT_LOG_MAX_LINES_PER_TASK_RUN"
    )
    summary = [r for r in logs if r.task_id == "talk"][-1]
    assert summary.level == "WARN"
    # The cap is per task run: the next task logs in full.
    assert len(messages(logs, "next")) == 3


async def test_the_byte_cap_drops_the_rest_and_says_so(harness: Harness) -> None:
    with override_limits(log_max_bytes_per_task_run=1000):
        ex = await harness.run(
            """
            id: wide
            namespace: t
            tasks:
              - {id: talk, type: test.Chatty, lines: 50, width: 100}
            """
        )
    logs = await harness.repo.logs(ex.id)
    talk = messages(logs, "talk")
    assert len(talk) == 11  # ten lines of 100 bytes fit
    assert talk[-1].startswith("40 more log lines (4000 bytes) were dropped: limit ")
    assert "log_max_bytes_per_task_run (1000) reached" in talk[-1]


async def test_a_long_line_is_cut_with_a_marker_and_the_failure_line_is_kept(
    harness: Harness,
) -> None:
    with override_limits(log_line_max_bytes=100, log_max_lines_per_task_run=2):
        ex = await harness.run(
            """
            id: long
            namespace: t
            tasks:
              - {id: talk, type: test.Chatty, lines: 5, width: 5000, fail: true}
            """
        )
    assert ex.state is State.FAILED
    logs = await harness.repo.logs(ex.id)
    talk = [r for r in logs if r.task_id == "talk"]
    assert [r.message for r in talk[:2]] == [
        "0:" + "x" * 98 + " \u2026 [4900 bytes cut]",
        "1:" + "x" * 98 + " \u2026 [4900 bytes cut]",
    ]
    # The engine's line saying why the task failed is never dropped, only cut.
    (error,) = [r for r in talk if r.level == "ERROR"]
    assert error.message == "f" * 100 + " \u2026 [4900 bytes cut]"
    assert talk[-1].message.startswith("3 more log lines")


def test_a_line_is_cut_on_a_character_boundary_and_counts_in_bytes() -> None:
    with override_limits(log_line_max_bytes=10):
        assert cut_line("é" * 5) == "é" * 5  # exactly 10 bytes
        assert cut_line("é" * 6) == "é" * 5 + " \u2026 [2 bytes cut]"
        assert cut_line("abcé" + "z" * 10) == "abcé" + "zzzzz" + " \u2026 [5 bytes cut]"
        assert cut_line("abcdefghié!") == "abcdefghi" + " \u2026 [3 bytes cut]"  # not half an é
        # A line already cut (by a script runner holding only its start) keeps the whole count.
        assert (
            cut_line("y" * 50 + " \u2026 [1000 bytes cut]") == "y" * 10 + " \u2026 [1040 bytes cut]"
        )


def test_secrets_are_masked_before_a_line_is_cut() -> None:
    # Cutting first could leave half a secret that the masker no longer recognizes.
    masker = Masker()
    token = SECRETS["API_TOKEN"]
    masker.add(token)
    sink = ExecutionLog(masker)
    with override_limits(log_line_max_bytes=12):
        sink.add(LogRecord(execution_id="e", level="INFO", message="token=" + token))
    (record,) = sink.take()
    assert token[:6] not in record.message
    assert record.message.startswith("token=******")
