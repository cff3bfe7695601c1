"""Engine benchmarks: `make bench` (or `python bench/run.py [--quick]`).

Every figure is wall-clock time on the durable embedded backend (SQLite, WAL) in a temporary
directory, with the core tasks only. Results are printed as a Markdown table, ready for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.runtime import plugin_host
from plait.storage import SqlRepository

ROOT = Path(__file__).resolve().parent.parent


def sequential(n: int) -> str:
    tasks = "".join(f"  - id: t{i}\n    type: plait.core.Return\n    format: x\n" for i in range(n))
    return f"id: seq{n}\nnamespace: bench\ntasks:\n{tasks}"


def sequential_durable(n: int) -> str:
    """Trivial tasks that are not pure (Sleep of zero): one commit per task."""
    tasks = "".join(
        f"  - id: t{i}\n    type: plait.core.Sleep\n    duration: PT0S\n" for i in range(n)
    )
    return f"id: dur{n}\nnamespace: bench\ntasks:\n{tasks}"


def fan_out(n: int) -> str:
    return (
        f"id: fan{n}\nnamespace: bench\ntasks:\n  - id: each\n    type: plait.core.ForEach\n"
        f"    values: {list(range(n))}\n    concurrencyLimit: 0\n    tasks:\n"
        "      - id: leaf\n        type: plait.core.Return\n        format: '{{ taskrun.value }}'\n"
    )


SMALL = """\
id: small
namespace: bench
tasks:
  - {id: a, type: plait.core.Return, format: "1"}
  - {id: b, type: plait.core.Return, format: "{{ outputs.a.value }}2"}
  - {id: c, type: plait.core.Return, format: "{{ outputs.b.value }}3"}
"""


async def with_runner(fn: Callable[[Runner], Awaitable[float]]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        repo = SqlRepository.sqlite(Path(tmp) / "plait.db")
        await repo.open()
        try:
            runner = Runner(repo, plugin_host(), LocalStorageBackend(Path(tmp) / "storage"))
            return await fn(runner)
        finally:
            await repo.close()


async def time_flow(source: str, repeat: int) -> float:
    """Best wall time of one execution of ``source`` over ``repeat`` tries."""

    async def go(runner: Runner) -> float:
        flow, revision = await runner.deploy(source)
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            execution = await runner.run(flow, revision, {})
            best = min(best, time.perf_counter() - started)
            assert execution.state is State.SUCCESS, execution.error
        return best

    return await with_runner(go)


async def throughput(count: int, concurrency: int) -> float:
    """Executions of the 3-task flow per second."""

    async def go(runner: Runner) -> float:
        flow, revision = await runner.deploy(SMALL)
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                execution = await runner.run(flow, revision, {})
                assert execution.state is State.SUCCESS

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)

    return await with_runner(go)


async def memory(count: int) -> tuple[float, float]:
    """RSS (MiB) after a tenth of ``count`` executions and after all of them."""

    async def go(runner: Runner) -> float:
        flow, revision = await runner.deploy(SMALL)
        marks = []
        for i in range(count):
            await runner.run(flow, revision, {})
            if i + 1 in (count // 10, count):
                gc.collect()
                marks.append(_rss_mib())
        go.marks = marks  # type: ignore[attr-defined]
        return 0.0

    await with_runner(go)
    first, last = go.marks  # type: ignore[attr-defined]
    return first, last


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_time(repeat: int) -> float:
    """Median wall time of `plait run` of a one-task flow, as a user runs it."""
    plait = str(Path(sys.executable).parent / "plait")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "one.yaml"
        flow.write_text("id: one\nnamespace: bench\ntasks:\n  - {id: a, type: plait.core.Return}\n")
        env["PLAIT_HOME"] = str(Path(tmp) / "home")
        subprocess.run([plait, "run", str(flow), "-q"], env=env, check=True)  # warm caches
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([plait, "run", str(flow), "-q"], env=env, check=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(quick: bool) -> None:
    # As the plait command does once started (plait.runtime.settle_heap): what start-up made
    # lives as long as the process and is kept out of the cyclic collector's scans.
    plugin_host()
    gc.freeze()
    rows: list[tuple[str, str, str]] = []
    for n in (100, 1000):
        took = await time_flow(sequential(n), 3)
        rows.append((f"{n} sequential trivial tasks", f"{took * 1000 / n:.3f} ms/task", "<= 0.3"))
    took = await time_flow(sequential_durable(1000), 3)
    rows.append(
        (
            "1000 sequential non-pure tasks (Sleep PT0S)",
            f"{took * 1000 / 1000:.3f} ms/task",
            "<= 0.3",
        )
    )
    took = await time_flow(fan_out(1000), 3)
    rows.append(("ForEach fan-out of 1000 tasks", f"{took:.3f} s", "<= 0.5 s"))
    count = 500 if quick else 2000
    rows.append(
        ("3-task executions back to back", f"{await throughput(count, 1):.0f} /s", ">= 500/s")
    )
    rows.append(
        ("3-task executions, 50 at a time", f"{await throughput(count, 50):.0f} /s", ">= 500/s")
    )
    rows.append(("`plait run` one-task flow, whole process", f"{process_time(5):.3f} s", "<= 0.5"))
    first, last = await memory(1000 if quick else 10000)
    rows.append(
        (
            f"RSS after {1000 if quick else 10000} executions (vs after a tenth)",
            f"{last:.0f} MiB (vs {first:.0f} MiB)",
            "flat",
        )
    )
    cpu = platform.processor() or platform.machine()
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({cpu})\n")
    print("| workload | result | target |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    _ = resource


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer executions")
    asyncio.run(main(parser.parse_args().quick))
