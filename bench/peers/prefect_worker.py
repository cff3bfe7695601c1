"""One Prefect 3 workload in this process: `python prefect_worker.py NAME` prints one JSON line.

Run by prefect_workloads.py with the Prefect venv's python, a fresh PREFECT_HOME and the
settings of a local ephemeral server already in the environment. Each workload mirrors the one
of the same name in bench/run.py; the first flow run (which starts the temporary server) is a
warm-up and is not timed, as Plait's deploy is not.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task

# A Prefect workload projected to take longer than this is measured on a tenth of its size and
# the per-task figure is scaled (the output then says so).
CAP_SECONDS = 180.0
# The throughput workloads start no new execution after this many seconds.
DEADLINE_SECONDS = 100.0

Result = dict[str, object]


@task
def ret(value: object) -> object:
    return value


@task
def sleep_zero() -> None:
    time.sleep(0)


@flow
def warm_up() -> object:
    return ret("x")


@flow
def sequential(n: int) -> None:
    for _ in range(n):
        ret("x")


@flow
def sequential_durable(n: int) -> None:
    for _ in range(n):
        sleep_zero()


@flow
def fan_out(n: int) -> list[object]:
    return ret.map(list(range(n))).result()


@task
async def aret(value: str) -> str:
    return value


@flow
async def small() -> str:
    a = await aret("1")
    b = await aret(a + "2")
    return await aret(b + "3")


def best_of(run: Callable[[int], object], n: int, repeat: int) -> float:
    """Best wall time of ``run(n)`` over ``repeat`` tries."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - started)
    return best


def scaled_best(run: Callable[[int], object], n: int, repeat: int, probe: float) -> Result:
    """Best wall time of ``run(n)``, given that ``run(n // 10)`` took ``probe`` seconds.

    If ``run(n)`` would take more than CAP_SECONDS, ``run(n // 10)`` is measured instead and
    the time scaled to ``n`` (``n`` in the result says which size was measured).
    """
    measured = n // 10 if probe * 10 > CAP_SECONDS else n
    took = best_of(run, measured, repeat) * n / measured
    return {"seconds": took, "n": measured, "repeat": repeat}


def per_task(result: Result, n: int) -> Result:
    seconds = result.pop("seconds")
    assert isinstance(seconds, float)
    return {"value": seconds * 1000 / n, "unit": "ms/task", **result}


async def back_to_back(count: int) -> dict[str, Result]:
    """Executions of the 3-task flow per second, one at a time, and the RSS meanwhile.

    To save time, the memory workload is this same run: RSS (MiB, this process and its
    temporary server) after a tenth of the executions and after all of them, measured outside
    the timed part. Stops early, with fewer executions, after DEADLINE_SECONDS.
    """
    await small()  # the first run in a new event loop opens the clients: not timed
    marks, busy, done = [], 0.0, 0
    deadline = time.perf_counter() + DEADLINE_SECONDS
    while done < count and time.perf_counter() < deadline:
        started = time.perf_counter()
        assert await small() == "123"
        busy += time.perf_counter() - started
        done += 1
        if done == count // 10:
            gc.collect()
            marks.append(tree_rss_mib(os.getpid()))
    gc.collect()
    marks.append(tree_rss_mib(os.getpid()))
    return {
        "back_to_back": {"value": done / busy, "unit": "/s", "n": done, "failed": 0},
        "memory": {"first": marks[0], "last": marks[-1], "unit": "MiB", "n": done},
    }


async def concurrent(count: int, concurrency: int) -> Result:
    """Successful executions of the 3-task flow per second, ``concurrency`` at a time.

    Prefect's server may refuse some runs under load (HTTP 503 after the client's retries):
    they are counted as failed. No execution starts after DEADLINE_SECONDS.
    """
    await small()
    slots = asyncio.Semaphore(concurrency)
    deadline = time.perf_counter() + DEADLINE_SECONDS

    async def one() -> bool | None:
        async with slots:
            if time.perf_counter() > deadline:
                return None
            try:
                return await small() == "123"
            except Exception:
                return False

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(count)))
    rate = outcomes.count(True) / (time.perf_counter() - started)
    started_runs = count - outcomes.count(None)
    return {"value": rate, "unit": "/s", "n": started_runs, "failed": outcomes.count(False)}


def tree_rss_mib(root: int) -> float:
    """Resident memory of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pages, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(name: str) -> dict[str, Result]:
    """The results of workload ``name`` (its sizes after colons), by result key."""
    warm_up()
    workload, *args = name.split(":")
    sizes = [int(arg) for arg in args]
    if workload == "warmup":
        return {}
    if workload == "sequential":
        small_n, large_n = sizes
        empty = best_of(sequential, 0, 3)
        small_t = best_of(sequential, small_n, 3)
        large = scaled_best(sequential, large_n, 2, probe=small_t * large_n / small_n / 10)
        return {
            f"seq{small_n}": per_task({"seconds": small_t, "n": small_n, "repeat": 3}, small_n),
            f"seq{large_n}": per_task(large, large_n),
            "empty_flow": {"value": empty, "unit": "s", "repeat": 3},
        }
    if workload == "durable":
        (n,) = sizes
        probe = best_of(sequential_durable, n // 10, 1)
        return {f"durable{n}": per_task(scaled_best(sequential_durable, n, 2, probe), n)}
    if workload == "fanout":
        (n,) = sizes
        probe = best_of(fan_out, n // 10, 1)
        result = scaled_best(fan_out, n, 1, probe)
        return {f"fanout{n}": {"value": result.pop("seconds"), "unit": "s", **result}}
    if workload == "back_to_back":
        return asyncio.run(back_to_back(sizes[0]))
    if workload == "concurrent":
        count, concurrency = sizes
        return {f"concurrent{concurrency}": asyncio.run(concurrent(count, concurrency))}
    raise SystemExit(f"unknown workload {name!r}")


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1])))
