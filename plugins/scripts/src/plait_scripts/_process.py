"""Running one subprocess: line-by-line streaming, and killing its whole process group.

The command runs under a small supervisor (:mod:`plait_scripts._supervisor`) started in a new
session, so the supervisor leads a process group of its own holding everything the command
spawns. Whatever way the run ends (normal exit, failure, cancellation, timeout),
:func:`run_process` leaves no process of that group behind: ``SIGTERM`` to the group,
:data:`KILL_GRACE_SECONDS` to exit, then ``SIGKILL``. When the Plait process itself dies
(``kill -9`` included), the supervisor notices at once and sends ``SIGKILL`` to the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from plait_sdk import TaskFailure

from plait_scripts import _leftovers

#: How long the process group gets to exit after ``SIGTERM`` before it is sent ``SIGKILL``.
KILL_GRACE_SECONDS = 5.0
#: After the main process exits, how long its output pipes may take to drain before whatever
#: still holds them (a background child) is terminated.
DRAIN_SECONDS = 2.0
#: At most this many bytes of a line are held: a longer line is passed on as its start and a
#: marker `` … [N bytes cut]`` (the hub cuts lines further, to its ``log_line_max_bytes``, and
#: adds to the count of that marker).
MAX_LINE_BYTES = 1 << 20
_POLL_SECONDS = 0.05

LineHandler = Callable[[str], None]
_P = TypeVar("_P", bound=asyncio.Protocol)

_SUPERVISOR = str(Path(__file__).with_name("_supervisor.py"))


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_stdout: LineHandler,
    on_stderr: LineHandler,
    cancel: asyncio.Event | None = None,
) -> int:
    """Run ``argv`` and hand each line of its output to a handler as soon as it is written.

    Returns the exit code (negative: killed by that signal).
    Raises :class:`TaskFailure` when the program cannot be started. Cancelling the caller kills
    the process group, then lets the cancellation propagate; setting ``cancel`` kills the group
    too, and the (negative) exit code is returned.

    The pipes are read by protocols that split lines as data arrives (no reader tasks, no
    buffering beyond one read and one unfinished line). The supervisor reports the command's
    exit code on a pipe as well; its own exit is noticed through a pidfd in the event loop
    (Linux), else by a thread waiting for it.
    """
    loop = asyncio.get_running_loop()
    # Plait keeps the only write end of `life`: when this process dies, however, the supervisor
    # reads end-of-file and kills the group. `status` brings back the command's exit code.
    life_r, life_w = os.pipe()
    status_r, status_w = os.pipe()
    record = _leftovers.record_path(uuid.uuid4().hex)
    lc_ctype = env.get("LC_CTYPE")
    supervisor = [sys.executable, "-I", "-S", _SUPERVISOR, str(life_r), str(status_w)]
    supervisor += [str(record or ""), "-" if lc_ctype is None else f"={lc_ctype}", "--"]
    try:
        # Synchronous, as in asyncio's own subprocess_exec: vfork() returns once the child
        # has executed the program.
        process = subprocess.Popen(  # noqa: ASYNC220
            [*supervisor, *argv],
            bufsize=0,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(life_r, status_w),
        )
    except BaseException as error:
        os.close(life_w)
        os.close(status_r)
        if isinstance(error, FileNotFoundError):  # the working directory, or the interpreter
            raise TaskFailure(f"cannot start {argv[0]!r}: no such file or command") from None
        if isinstance(error, PermissionError):
            raise TaskFailure(f"cannot start {argv[0]!r}: permission denied") from None
        raise
    finally:
        os.close(life_r)
        os.close(status_w)
    assert process.stdout is not None
    assert process.stderr is not None
    status_pipe = os.fdopen(status_r, "rb", buffering=0)
    watch = _ExitWatch(loop, process)
    status = _Status(loop)
    readers = [_Lines(loop, on_stdout), _Lines(loop, on_stderr)]
    transports: list[asyncio.BaseTransport] = []
    status_transport: asyncio.BaseTransport | None = None
    try:
        status_transport, _ = await loop.connect_read_pipe(
            functools.partial(_same, status), status_pipe
        )
        for reader, pipe in zip(readers, (process.stdout, process.stderr), strict=True):
            transport, _ = await loop.connect_read_pipe(functools.partial(_same, reader), pipe)
            transports.append(transport)
        if cancel is None:
            await asyncio.shield(status.ended)
        else:
            await _exited_or_cancelled(status.ended, cancel)
        if status.ended.done():
            # The pipes reach end-of-file once every process holding them is gone; then the
            # supervisor has nothing left to wait for and exits on its own.
            done, _ = await asyncio.wait([r.closed for r in readers], timeout=DRAIN_SECONDS)
            if len(done) == len(readers):
                await asyncio.wait([watch.exited], timeout=DRAIN_SECONDS)
    finally:
        # On every path, also after a cancellation: nothing of the group may outlive the run.
        try:
            await terminate_group(process.pid, watch.exited)
        finally:
            os.close(life_w)  # the supervisor, if still there, kills what is left of its group
            await _settle(readers, transports, (process.stdout, process.stderr))
            if status_transport is not None:
                status_transport.close()
            status_pipe.close()
            watch.close()
            _leftovers.forget(record)
    for reader in readers:
        if reader.error is not None:
            raise reader.error
    if status.failed_to_start is not None:
        raise TaskFailure(f"cannot start {argv[0]!r}: {_start_error(status.failed_to_start)}")
    code = status.code if status.code is not None else process.returncode
    assert code is not None
    return code


def _start_error(number: int) -> str:
    if number == errno.ENOENT:
        return "no such file or command"
    if number == errno.EACCES:
        return "permission denied"
    return os.strerror(number)


class _Status(asyncio.Protocol):
    """Reads the supervisor's status pipe: ``X <code>`` once the command has exited, ``E <errno>``
    when it could not be started. ``ended`` resolves with either, or at end-of-file (the
    supervisor is gone)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ended: asyncio.Future[None] = loop.create_future()
        self.buffer = b""
        self.code: int | None = None
        self.failed_to_start: int | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            kind, _, value = line.partition(b" ")
            if kind == b"X":
                self.code = int(value)
            elif kind == b"E":
                self.failed_to_start = int(value)
            self._end()

    def eof_received(self) -> bool | None:
        self._end()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


def _same(reader: _P) -> _P:
    return reader


async def _exited_or_cancelled(exited: asyncio.Future[None], cancel: asyncio.Event) -> None:
    if cancel.is_set():
        return
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        # asyncio.wait never cancels what it waits for: `exited` stays usable afterwards.
        await asyncio.wait((exited, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


class _ExitWatch:
    """Resolves ``exited`` once the process has exited, and reaps it.

    A pidfd polled by the event loop where there is one (Linux 5.3+): no thread, no extra
    wake-up. Elsewhere a daemon thread waits for the process, as asyncio's own child watcher
    does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes]) -> None:
        self.loop = loop
        self.process = process
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait, name="plait-script-wait", daemon=True).start()
            return
        loop.add_reader(self.pidfd, self._readable)

    def _readable(self) -> None:
        self.close()
        self.process.poll()  # reaps it: the pidfd is readable once the process has exited
        self._done()

    def _wait(self) -> None:
        self.process.wait()
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            self.loop.call_soon_threadsafe(self._done)

    def _done(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def close(self) -> None:
        if self.pidfd is not None:
            self.loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None


class LineSplitter:
    """Splits a byte stream into lines (``\\n``, ``\\r\\n``), decoded as UTF-8 leniently, and
    hands each to ``on_line`` as soon as it is complete. Of a line longer than
    :data:`MAX_LINE_BYTES`, only that much is held: the rest is counted, and the line is passed
    on as its start and a marker `` … [N bytes cut]``."""

    def __init__(self, on_line: LineHandler) -> None:
        self.on_line = on_line
        self.buffer = b""
        #: Bytes of the current line past MAX_LINE_BYTES, not kept.
        self.cut = 0

    def feed(self, data: bytes) -> None:
        *complete, rest = data.split(b"\n")
        for part in complete:
            self._add(part)
            self._emit()
        self._add(rest)

    def close(self) -> None:
        """The end of the stream: pass on an unfinished last line."""
        if self.buffer or self.cut:
            self._emit()

    def _add(self, part: bytes) -> None:
        room = MAX_LINE_BYTES - len(self.buffer)
        if len(part) > room:
            self.cut += len(part) - room
            part = part[:room]
        if part:
            self.buffer += part

    def _emit(self) -> None:
        raw, cut = self.buffer, self.cut
        self.buffer, self.cut = b"", 0
        if cut:
            self.on_line(f"{_decode(raw, strip=False)} \u2026 [{cut} bytes cut]")
        else:
            self.on_line(_decode(raw))


class _Lines(asyncio.Protocol):
    """Reads a pipe into a :class:`LineSplitter`. An error of the line handler stops the
    delivery and is kept in ``error``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_line: LineHandler) -> None:
        self.lines = LineSplitter(on_line)
        self.error: BaseException | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self._call(self.lines.feed, data)

    def eof_received(self) -> bool | None:
        self._call(self.lines.close)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._call(self.lines.close)
        if not self.closed.done():
            self.closed.set_result(None)

    def _call(self, method: Callable[..., None], *args: bytes) -> None:
        if self.error is None:
            try:
                method(*args)
            except Exception as error:
                self.error = error


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


async def _settle(
    readers: list[_Lines], transports: list[asyncio.BaseTransport], pipes: tuple[Any, ...]
) -> None:
    """Let the readers finish what the pipes still hold; stop listening to a pipe that a process
    outside the group (a daemon) still holds."""
    # A reader without a transport (the start was interrupted) will hear nothing.
    pending = [r.closed for r in readers[: len(transports)] if not r.closed.done()]
    if pending:
        _, pending_set = await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        if pending_set:
            for transport in transports:
                transport.close()
            await asyncio.wait(pending_set, timeout=DRAIN_SECONDS)
    for pipe in pipes:  # those never handed to a transport (start interrupted)
        pipe.close()


def _decode(raw: bytes, *, strip: bool = True) -> str:
    if strip:
        raw = raw.removesuffix(b"\r")
    return raw.decode("utf-8", errors="replace")
