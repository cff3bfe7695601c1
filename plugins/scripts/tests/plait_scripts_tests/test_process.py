"""Streaming, cancellation and timeouts: the process group never outlives the task."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from pathlib import Path

import pytest
from plait_scripts import PythonScript, ShellCommands, ShellScript, _process
from plait_sdk import Masker, TaskFailure
from plait_sdk.testing import CapturedLog, HarnessContext, LogLine, TaskHarness

from ._support import alive, wait_dead
from .conftest import Harness


class TimedLog(CapturedLog):
    """Stamps each line with its arrival time."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(masker)
        self.arrived: dict[str, float] = {}

    def record(self, line: LogLine) -> None:
        super().record(line)
        self.arrived[line.message] = time.monotonic()


async def test_lines_are_logged_as_they_are_written_not_at_the_end(workdir: Path) -> None:
    harness = TaskHarness(root=workdir.parent / ".harness")
    log = TimedLog(harness.masker)
    ctx = harness.context(working_dir=workdir, log=log)
    task = PythonScript(script="import time\nprint('first')\ntime.sleep(0.8)\nprint('second')")
    await task.run(ctx)
    ended = time.monotonic()
    first, second = log.arrived["first"], log.arrived["second"]
    assert second - first >= 0.6
    assert ended - first >= 0.6  # the first line arrived while the process was running


async def test_cancellation_kills_the_script_and_its_children(
    ctx: HarnessContext, workdir: Path
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
    assert "started" in ctx.messages("INFO")


async def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(
    ctx: HarnessContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
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
    ctx: HarnessContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
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


async def test_long_lines_and_crlf_and_invalid_utf8(ctx: HarnessContext) -> None:
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
    messages = ctx.messages("INFO")
    assert messages[:2] == ["crlf", "bad \ufffd byte"]
    # Only the start of a huge line is held, then a marker with the count of the rest.
    assert messages[2] == "x" * _process.MAX_LINE_BYTES + " \u2026 [10 bytes cut]"
    assert messages[-1] == "no newline at the end"
    assert out.std_out_line_count == 4


async def test_a_missing_interpreter_is_a_clean_failure(ctx: HarnessContext) -> None:
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


@pytest.mark.parametrize("tail", [10, 0])
def test_a_long_line_is_cut_once_even_when_its_newline_comes_in_the_same_read(tail: int) -> None:
    # "ab\n" shifts the reads so that the newline after the long line arrives together with
    # its last bytes, past the cap. A line of exactly the cap gives no empty piece.
    data = b"ab\n" + b"x" * (_process.MAX_LINE_BYTES + tail) + b"\nend"
    lines: list[str] = []
    splitter = _process.LineSplitter(lines.append)
    for start in range(0, len(data), 1 << 16):
        splitter.feed(data[start : start + (1 << 16)])
    splitter.close()
    cut = f" \u2026 [{tail} bytes cut]" if tail else ""
    assert lines == ["ab", "x" * _process.MAX_LINE_BYTES + cut, "end"]


def test_a_line_of_megabytes_is_one_line_with_the_count_of_what_was_cut() -> None:
    lines: list[str] = []
    splitter = _process.LineSplitter(lines.append)
    for _ in range(20):
        splitter.feed(b"z" * (1 << 20))
    splitter.feed(b"\r\nafter")
    splitter.close()
    assert lines == [
        "z" * _process.MAX_LINE_BYTES + f" \u2026 [{19 * (1 << 20) + 1} bytes cut]",
        "after",
    ]
    assert len(splitter.buffer) == 0


def test_an_empty_line_after_a_cut_line_is_kept() -> None:
    lines: list[str] = []
    splitter = _process.LineSplitter(lines.append)
    splitter.feed(b"y" * _process.MAX_LINE_BYTES)
    splitter.feed(b"\n\nnext\n")
    assert [len(line) for line in lines] == [_process.MAX_LINE_BYTES, 0, 4]


class CountingLog(CapturedLog):
    """Counts lines and characters and keeps nothing: a 100 MB output stays out of memory."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(masker)
        self.count = 0
        self.chars = 0

    def record(self, line: LogLine) -> None:
        self.count += 1
        self.chars += len(line.message)


async def test_a_100_mb_output_is_streamed_in_constant_memory(workdir: Path) -> None:
    harness = TaskHarness(root=workdir.parent / ".harness")
    log = CountingLog(harness.masker)
    ctx = harness.context(working_dir=workdir, log=log)
    # 100 MiB: 100 Ki lines of 1 KiB, then a 10 MiB line (cut to 1 MiB), then a value.
    task = PythonScript(
        script=(
            "import sys\n"
            "line = 'x' * 1023 + '\\n'\n"
            "chunk = line * 64\n"
            "for _ in range(1600):\n"
            "    sys.stdout.write(chunk)\n"
            "sys.stdout.write('y' * (10 << 20) + '\\n')\n"
            'print(\'::{"outputs": {"done": true}}::\')\n'
        )
    )
    tracemalloc.start()
    try:
        started = time.monotonic()
        out = await task.run(ctx)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.vars == {"done": True}
    assert log.count == 102_400 + 1
    marker = f" \u2026 [{9 << 20} bytes cut]"
    assert log.chars == 102_400 * 1023 + (1 << 20) + len(marker)
    assert out.std_out_line_count == 102_400 + 1 + 1
    # What is held at once: one pipe read (256 KiB) and at most one unfinished line (1 MiB).
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a 110 MiB output"
    assert elapsed < 15


async def test_a_timeout_kills_grandchildren_even_those_ignoring_sigterm(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "KILL_GRACE_SECONDS", 0.5)
    pids = tmp_path / "pids"
    # python -> sh (ignores SIGTERM) -> sleep (inherits the ignored SIGTERM) and another sleep
    ex = await harness.run(
        f"""
        id: tree
        namespace: test.scripts
        tasks:
          - id: hang
            type: plait.scripts.python.Script
            timeout: PT2S
            script: |
              import os, subprocess, time
              subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & echo $$ $! >> {pids}; wait"])
              subprocess.Popen(["sh", "-c", "sleep 60 & echo $$ $! >> {pids}; wait"])
              with open("{pids}", "a") as f:
                  f.write(str(os.getpid()) + "\\n")
              time.sleep(60)
        """
    )
    assert ex.state.value == "FAILED"
    assert [r.error for r in ex.task_runs] == ["timed out after PT2S"]
    found = [int(pid) for pid in pids.read_text().split()]
    assert len(found) == 5  # the script, two shells, two sleeps
    for pid in found:
        assert await wait_dead(pid), f"process {pid} survived the timeout"


async def test_without_pidfd_a_thread_notices_the_exit(
    ctx: HarnessContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on macOS (or Linux before 5.3): no os.pidfd_open.
    monkeypatch.delattr(os, "pidfd_open")
    with pytest.raises(TaskFailure, match="exited with code 3: oops"):
        await ShellCommands(commands=["echo one", "echo oops >&2", "exit 3"]).run(ctx)
    assert ctx.messages("INFO") == ["one"]
    task = ShellCommands(commands=["sleep 60 & echo $! > child.pid", "wait"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task.run(ctx), 1.0)
    assert await wait_dead(int((workdir / "child.pid").read_text()))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_the_command_starts_with_no_signal_ignored_and_no_extra_descriptor(
    workdir: Path,
) -> None:
    """Python (the supervisor) ignores SIGPIPE: the command must not inherit that, nor the
    supervisor's pipes."""
    lines: list[str] = []
    code = await _process.run_process(
        ["sh", "-c", "grep SigIgn /proc/self/status; ls /proc/self/fd; yes | head -n 1"],
        cwd=workdir,
        env={"PATH": os.environ["PATH"]},
        on_stdout=lines.append,
        on_stderr=lines.append,
    )
    assert code == 0
    ignored = int(next(line for line in lines if line.startswith("SigIgn:")).split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        assert not ignored & (1 << (sig - 1)), sig.name
    fds = sorted(int(line) for line in lines if line.isdigit())
    assert fds == [0, 1, 2, 3]  # 3: the directory `ls` reads
    assert not any("Broken pipe" in line for line in lines)
