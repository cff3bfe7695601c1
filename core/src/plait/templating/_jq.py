"""jq programs run in a worker process, so a hostile one can be stopped.

libjq runs in C: ``[range(1e10)]`` or ``repeat(1)`` would hold the event loop and grow without
bound in the engine's own process, where nothing can interrupt it. Programs run instead in one
long-lived child process (``python -m plait.templating._jq``) whose address space is capped;
the caller waits at most ``template_render_seconds`` for an answer, then kills the worker (the
next call starts a new one). Results larger than ``template_max_string`` as JSON are refused by
the worker before they are sent.

One request or answer is one line of JSON on the worker's stdin / stdout.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from plait.limits import limits

#: The worker's address space: libjq and Python's own, plus room for the values it builds.
WORKER_BASE_BYTES = 512 * 2**20
WORKER_START_SECONDS = 30.0
"""How long a new jq worker may take to start (import jq) before a render gives up."""


class JqError(Exception):
    """A jq program failed; ``kind`` is ``compile`` (a syntax error) or ``run``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class JqLimitError(Exception):
    """A jq program went over a limit: time, memory or the size of its results."""


class _Worker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        budget = limits()
        memory = WORKER_BASE_BYTES + 8 * budget.template_max_string
        self._process = subprocess.Popen(
            [sys.executable, "-m", "plait.templating._jq", str(memory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._buffer = b""
        # The worker says it is ready once jq is imported: its start-up (slow on a loaded
        # machine) is not counted against the program's time budget.
        self._read_line(self._process, time.monotonic() + WORKER_START_SECONDS, starting=True)
        return self._process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def run(self, expression: str, text: str) -> list[Any]:
        budget = limits()
        request = json.dumps(
            {"program": expression, "input": text, "max": budget.template_max_string}
        )
        with self._lock:
            process = self._start()
            assert process.stdin is not None
            try:
                process.stdin.write(request.encode() + b"\n")
                process.stdin.flush()
            except BrokenPipeError:
                self.stop()
                raise JqLimitError("the jq worker stopped; try again") from None
            line = self._read_line(process, time.monotonic() + budget.template_render_seconds)
        answer = json.loads(line)
        if "ok" in answer:
            results: list[Any] = answer["ok"]
            return results
        if "big" in answer:
            raise JqLimitError(
                f"its results would be {answer['big']:,} characters of JSON, more than the "
                f"limit of {budget.template_max_string:,} (PLAIT_LIMIT_TEMPLATE_MAX_STRING)"
            )
        raise JqError(answer["kind"], answer["error"])

    def _read_line(
        self, process: subprocess.Popen[bytes], deadline: float, *, starting: bool = False
    ) -> bytes:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self.stop()
                if starting:
                    raise JqLimitError(
                        f"the jq worker did not start within {WORKER_START_SECONDS:g} s"
                    )
                seconds = limits().template_render_seconds
                raise JqLimitError(
                    f"the program ran for more than {seconds:g} s "
                    "(PLAIT_LIMIT_TEMPLATE_RENDER_SECONDS)"
                )
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.stop()
                if starting:
                    raise JqLimitError("the jq worker could not start")
                raise JqLimitError(
                    "the program ran out of memory (the jq worker is capped at "
                    f"{(WORKER_BASE_BYTES + 8 * limits().template_max_string) // 2**20} MiB)"
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


_worker = _Worker()
atexit.register(_worker.stop)


def run(expression: str, text: str) -> list[Any]:
    """Every result of the jq ``expression`` on the JSON ``text`` (blocking: call it in a
    thread)."""
    return _worker.run(expression, text)


# -- the worker process ---------------------------------------------------------------------------


def _serve(memory: int) -> None:  # pragma: no cover - runs in the worker process
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    jq: Any = importlib.import_module("jq")  # no type stubs

    programs: dict[str, Any] = {}
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        expression = request["program"]
        try:
            program = programs.get(expression)
            if program is None:
                program = jq.compile(expression)
                if len(programs) > 256:
                    programs.clear()
                programs[expression] = program
        except ValueError as error:
            answer: dict[str, Any] = {"kind": "compile", "error": str(error)}
        else:
            try:
                results = program.input_text(request["input"]).all()
            except ValueError as error:
                answer = {"kind": "run", "error": str(error)}
            except MemoryError:
                return  # the caller reports the closed pipe as "out of memory"
            else:
                text = json.dumps({"ok": results}, ensure_ascii=False)
                if len(text) <= request["max"]:
                    out.write(text + "\n")
                    out.flush()
                    continue
                answer = {"big": len(text)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":  # pragma: no cover
    _serve(int(sys.argv[1]))
