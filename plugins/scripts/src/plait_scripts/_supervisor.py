"""The supervisor between Plait and a script: its processes die with the Plait process.

Run as ``python -I -S _supervisor.py LIFE_FD STATUS_FD RECORD LC_CTYPE -- COMMAND...`` in a
new session (so it leads a process group of its own), it starts ``COMMAND`` in that group and:

- writes ``X <exit code>`` to ``STATUS_FD`` when the command exits (``E <errno>`` when it cannot
  be started), and exits once the command has exited and it was asked to (``SIGTERM``) or no
  process it adopted is left;
- as soon as ``LIFE_FD`` (the read end of a pipe whose only write end Plait holds) reaches
  end-of-file, which the kernel does when the Plait process dies in any way, ``kill -9``
  included, sends ``SIGKILL`` to the whole process group and every descendant that left it.

A pipe rather than ``PR_SET_PDEATHSIG``: the death signal fires when the *thread* that forked
dies (Plait may start processes from a worker thread), and it reaches only the direct child,
never the grandchildren a shell script starts in the background. The supervisor is also a child
subreaper (Linux), so orphaned descendants, even those that called ``setsid()`` to leave the
group, are re-parented to it and can be found and killed.

While it runs it keeps ``RECORD`` (a JSON file: its pid and start time, and Plait's) so that
``plait executions recover`` can kill what is left if the supervisor itself was killed too.

Only the standard library, and little of it (no ``subprocess``, no ``json``): it starts in a
few milliseconds without ``site``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

_PR_SET_CHILD_SUBREAPER = 36
#: Python ignores SIGPIPE (and SIGXFSZ); the command starts with every disposition at default.
_DEFAULT_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGPIPE", "SIGXFSZ", "SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD")
    if hasattr(signal, name)
)


def main(argv: list[str]) -> int:
    life_fd, status_fd, record, lc_ctype = int(argv[1]), int(argv[2]), argv[3], argv[4]
    command = argv[6:]
    # Python may have "coerced" a C locale into LC_CTYPE at start-up: the command gets the
    # environment Plait gave.
    if lc_ctype == "-":
        os.environ.pop("LC_CTYPE", None)
    else:
        os.environ["LC_CTYPE"] = lc_ctype.removeprefix("=")
    _become_subreaper()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    asked_to_stop = False

    def stop(signum: int, frame: object) -> None:
        nonlocal asked_to_stop
        asked_to_stop = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    for fd in (life_fd, status_fd):
        os.set_inheritable(fd, False)  # the command inherits stdin, stdout and stderr only
    try:
        child = os.posix_spawnp(command[0], command, os.environ, setsigdef=_DEFAULT_SIGNALS)
    except OSError as error:
        os.write(status_fd, f"E {error.errno or 0}\n".encode())
        return 127
    # Only the command holds the output pipes now: they reach end-of-file when it is done.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _write_record(record)
    code: int | None = None
    while True:
        while True:  # reap the command and any adopted orphan
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = -1
            if pid <= 0:
                break
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                os.write(status_fd, f"X {code}\n".encode())
        if code is not None and (asked_to_stop or pid == -1):
            _remove(record)
            return 0
        ready, _, _ = select.select([life_fd, wake_r], [], [])
        if life_fd in ready and not os.read(life_fd, 1):
            # Plait is gone (or done with this group): nothing of it may survive.
            _remove(record)
            _kill_descendants(os.getpid())
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the group, this process included
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _write_record(path: str) -> None:
    if not path:
        return
    pid, parent = os.getpid(), os.getppid()
    fields = {"pid": pid, "start": start_time(pid), "owner": parent}
    fields["ownerStart"] = start_time(parent)
    # JSON by hand: integers and nulls only, and `json` costs start-up time.
    text = ", ".join(f'"{k}": {"null" if v is None else v}' for k, v in fields.items())
    temporary = f"{path}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, ("{" + text + "}").encode())
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        pass


def _remove(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot, Linux), None if unknown or gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def processes() -> dict[int, list[bytes]]:
    """Every live process: pid to its ``/proc/PID/stat`` fields (empty without ``/proc``)."""
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    for name in names:
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and len(fields) > 19 and fields[0] not in (b"Z", b"X"):
                found[int(name)] = fields
    return found


def _kill_descendants(root: int) -> None:
    """``SIGKILL`` every descendant of ``root`` outside its process group (those in it die
    with the group)."""
    group = os.getpgid(root)
    for _ in range(3):  # again, in case one forked meanwhile
        table = processes()
        children: dict[int, list[int]] = {}
        for pid, fields in table.items():
            children.setdefault(int(fields[1]), []).append(pid)
        todo, found = [root], []
        while todo:
            for pid in children.get(todo.pop(), []):
                found.append(pid)
                todo.append(pid)
        outside = [pid for pid in found if int(table[pid][2]) != group]
        if not outside:
            return
        for pid in outside:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
