"""Plait's own benchmark workloads (bench/run.py): prints one JSON line of results.

Run with the project's venv python (bench/peers/run.py does), so that `plait` is importable
and the `plait` command sits beside the interpreter. The JSON has the same shape as
prefect_workloads.py prints.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "run.py"

THROUGHPUT_COUNT = 2000
MEMORY_COUNT = 10000
PROCESS_REPEAT = 5


def load_bench() -> ModuleType:
    """bench/run.py as a module (not by name: bench/peers/run.py is also `run`)."""
    spec = importlib.util.spec_from_file_location("plait_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def workloads(bench: ModuleType, timings: dict[str, float]) -> dict[str, object]:
    results: dict[str, object] = {}

    def done(key: str, started: float, result: dict[str, object]) -> None:
        results[key] = result
        timings[key] = time.perf_counter() - started
        print(f"plait {key}: {result} ({timings[key]:.0f} s)", file=sys.stderr)

    for n in (100, 1000):
        started = time.perf_counter()
        took = await bench.time_flow(bench.sequential(n), 3)
        done(f"seq{n}", started, {"value": took * 1000 / n, "unit": "ms/task", "n": n})
    started = time.perf_counter()
    took = await bench.time_flow(bench.sequential_durable(1000), 3)
    done("durable1000", started, {"value": took * 1000 / 1000, "unit": "ms/task", "n": 1000})
    started = time.perf_counter()
    took = await bench.time_flow(bench.fan_out(1000), 3)
    done("fanout1000", started, {"value": took, "unit": "s", "n": 1000})
    for key, concurrency in (("back_to_back", 1), ("concurrent50", 50)):
        started = time.perf_counter()
        rate = await bench.throughput(THROUGHPUT_COUNT, concurrency)
        done(key, started, {"value": rate, "unit": "/s", "n": THROUGHPUT_COUNT})
    started = time.perf_counter()
    took = bench.process_time(PROCESS_REPEAT)
    done("process", started, {"value": took, "unit": "s", "n": PROCESS_REPEAT})
    started = time.perf_counter()
    first, last = await bench.memory(MEMORY_COUNT)
    done("memory", started, {"first": first, "last": last, "unit": "MiB", "n": MEMORY_COUNT})
    return results


def main() -> None:
    timings: dict[str, float] = {}
    results = asyncio.run(workloads(load_bench(), timings))
    info = {
        "engine": "Plait",
        "version": version("plait"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": results,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    print(json.dumps(info))


if __name__ == "__main__":
    main()
