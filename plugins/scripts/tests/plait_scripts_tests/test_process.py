"""Streaming, cancellation and timeouts: the process group never outlives the task."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from plait_scripts import PythonScript, ShellCommands, ShellScript, _process
from plait_sdk import TaskFailure

from ._support import FakeContext, alive, wait_dead


async def test_lines_are_logged_as_they_are_written_not_at_the_end(ctx: FakeContext) -> None:
    task = PythonScript(script="import time\nprint('first')\ntime.sleep(0.8)\nprint('second')")
    await task.run(ctx)
    ended = time.monotonic()
    first, second = (r for r in ctx.log.records if r.message in ("first", "second"))
    assert second.at - first.at >= 0.6
    assert ended - first.at >= 0.6  # the first line arrived while the process was running


async def test_cancellation_kills_the_script_and_its_children(
    ctx: FakeContext, workdir: Path
) -> None:
    task = ShellCommands(
        commands=["echo $$ > main.pid", "sleep 60 & echo $! > child.pid", "echo started", "wait"]
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task.run(ctx), 1.0)
    assert time.monotonic() - started < 3  # sleep obeys SIGTERM: no wait for the grace period
    main, child = (int((workdir / f).read_text()) for f in ("main.pid", "child.pid"))
    assert await wait_dead(main)
    assert await wait_dead(child), "the script's child survived the timeout"
    assert "started" in ctx.log.messages("INFO")


async def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(
    ctx: FakeContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "KILL_GRACE_SECONDS", 0.5)
    # Ignored signals are inherited: neither the shell nor its sleep react to SIGTERM.
    task = ShellScript(script="trap '' TERM\nsleep 60 &\necho $! > child.pid\nwait\n")
    run = asyncio.create_task(task.run(ctx))
    child = await _read_pid(workdir / "child.pid")
    started = time.monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert time.monotonic() - started >= 0.45
    assert await wait_dead(child)


async def test_background_processes_left_behind_are_killed_when_the_script_ends(
    ctx: FakeContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "DRAIN_SECONDS", 0.3)
    task = ShellCommands(
        commands=[
            "sleep 60 > /dev/null 2>&1 & echo $! > quiet.pid",
            "sleep 60 & echo $! > holding.pid",  # holds the stdout pipe open
            "echo done",
        ]
    )
    started = time.monotonic()
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert time.monotonic() - started < 3
    for name in ("quiet.pid", "holding.pid"):
        assert await wait_dead(int((workdir / name).read_text())), name


async def test_long_lines_and_crlf_and_invalid_utf8(ctx: FakeContext) -> None:
    big = _process.MAX_LINE_BYTES + 10
    task = PythonScript(
        script=(
            "import sys\n"
            "sys.stdout.buffer.write(b'crlf\\r\\nbad \\xff byte\\n')\n"
            f"sys.stdout.write('x' * {big} + '\\n')\n"
            "sys.stdout.write('no newline at the end')\n"
        )
    )
    out = await task.run(ctx)
    messages = ctx.log.messages("INFO")
    assert messages[:2] == ["crlf", "bad \ufffd byte"]
    assert [len(m) for m in messages[2:4]] == [_process.MAX_LINE_BYTES, 10]
    assert messages[-1] == "no newline at the end"
    assert out.std_out_line_count == 5


async def test_a_missing_interpreter_is_a_clean_failure(ctx: FakeContext) -> None:
    task = ShellCommands(commands=["true"], interpreter=["/no/such/shell", "-c"])
    with pytest.raises(TaskFailure, match="cannot start '/no/such/shell'"):
        await task.run(ctx)


def test_group_alive_is_false_for_a_missing_group() -> None:
    assert not _process.group_alive(2**22 + 12345)
    assert not alive(2**22 + 12345)


async def _read_pid(path: Path) -> int:
    for _ in range(250):
        if (pid := _pid(path)) is not None:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def _pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def test_a_long_line_is_cut_even_when_its_newline_comes_in_the_same_read() -> None:
    # "ab\n" shifts the reads so that the newline after the long line arrives together with
    # its last bytes, past the cap.
    reader = asyncio.StreamReader()
    reader.feed_data(b"ab\n" + b"x" * (_process.MAX_LINE_BYTES + 10) + b"\nend")
    reader.feed_eof()
    lines: list[str] = []
    await _process._pump(reader, lines.append)
    assert [len(line) for line in lines] == [2, _process.MAX_LINE_BYTES, 10, 3]
