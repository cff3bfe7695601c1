"""Running one subprocess: line-by-line streaming, and killing its whole process group.

The child starts in a new session (``start_new_session=True``), so it leads a process group of
its own holding everything it spawns. Whatever way the run ends (normal exit, failure,
cancellation, timeout), :func:`run_process` leaves no process of that group behind: ``SIGTERM``
to the group, :data:`KILL_GRACE_SECONDS` to exit, then ``SIGKILL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from plait_sdk import TaskFailure

#: How long the process group gets to exit after ``SIGTERM`` before it is sent ``SIGKILL``.
KILL_GRACE_SECONDS = 5.0
#: After the main process exits, how long its output pipes may take to drain before whatever
#: still holds them (a background child) is terminated.
DRAIN_SECONDS = 2.0
#: A longer line is passed on in pieces of this many bytes.
MAX_LINE_BYTES = 1 << 20
_READ_SIZE = 1 << 16
_POLL_SECONDS = 0.05

LineHandler = Callable[[str], None]


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_stdout: LineHandler,
    on_stderr: LineHandler,
) -> int:
    """Run ``argv`` and hand each line of its output to a handler as soon as it is written.

    Returns the exit code (negative: killed by that signal).
    Raises :class:`TaskFailure` when the program cannot be started. Cancelling the caller kills
    the process group, then lets the cancellation propagate.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise TaskFailure(f"cannot start {argv[0]!r}: no such file or command") from None
    except PermissionError:
        raise TaskFailure(f"cannot start {argv[0]!r}: permission denied") from None
    assert protocol.stdout is not None
    assert protocol.stderr is not None
    pumps = [
        asyncio.create_task(_pump(protocol.stdout, on_stdout)),
        asyncio.create_task(_pump(protocol.stderr, on_stderr)),
    ]
    try:
        await asyncio.shield(protocol.exited)
        # The pipes reach end-of-file once every process holding them is gone.
        await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
    finally:
        # On every path, also after a cancellation: nothing of the group may outlive the run.
        await terminate_group(transport.get_pid(), protocol.exited)
        await _settle(transport, pumps)
    for pump in pumps:
        if not pump.cancelled() and (error := pump.exception()) is not None:
            raise error
    code = transport.get_returncode()
    assert code is not None
    return code


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Also tells when the process itself exits: ``Process.wait()`` waits for its pipes too,
    which a background child may hold open for as long as it lives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_READ_SIZE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def terminate_group(pgid: int, exited: asyncio.Future[None]) -> None:
    """``SIGTERM`` the process group ``pgid``, then ``SIGKILL`` what is left after the grace.

    ``exited`` resolves when the group's leader (the process started) has exited.
    """
    if not group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_GRACE_SECONDS
        while loop.time() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            if not group_alive(pgid):
                break
    finally:
        # Synchronous on purpose: runs even if this cleanup is itself cancelled.
        if group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    if not exited.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), KILL_GRACE_SECONDS)


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is still in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Something is in the group, possibly only zombies nobody reaped yet (an exited child waits
    # for its parent, or for an init that may never reap in a container): look closer if we can.
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _settle(transport: asyncio.SubprocessTransport, pumps: list[asyncio.Task[None]]) -> None:
    """Let the readers finish what the pipes still hold; stop them if something holds a pipe."""
    _, pending = await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
    if pending:
        # A process that left the group (a daemon) still holds a pipe: stop listening to it.
        for pump in pending:
            pump.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        transport.close()


async def _pump(stream: asyncio.StreamReader, on_line: LineHandler) -> None:
    """Split a byte stream into lines (``\\n``, ``\\r\\n``), decoded as UTF-8 leniently; a line
    longer than :data:`MAX_LINE_BYTES` is passed on in pieces of that size."""
    buffer = b""
    while chunk := await stream.read(_READ_SIZE):
        buffer += chunk
        if b"\n" in chunk:
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                _emit(raw, on_line)
        while len(buffer) >= MAX_LINE_BYTES:
            on_line(_decode(buffer[:MAX_LINE_BYTES]))
            buffer = buffer[MAX_LINE_BYTES:]
    if buffer:
        _emit(buffer, on_line)


def _emit(raw: bytes, on_line: LineHandler) -> None:
    for start in range(0, max(len(raw), 1), MAX_LINE_BYTES):
        on_line(_decode(raw[start : start + MAX_LINE_BYTES]))


def _decode(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")
