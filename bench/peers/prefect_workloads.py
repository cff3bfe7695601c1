"""Plait's benchmark workloads on Prefect 3, embedded: prints one JSON line of results.

Run with the Prefect venv's python (bench/peers/run.py does). Prefect runs against its local
ephemeral server (a temporary server subprocess on 127.0.0.1 with a SQLite database in
PREFECT_HOME) with logging at WARNING and telemetry off. Each workload runs in its own process
with a fresh PREFECT_HOME copied from one already migrated, so that a workload neither pays for
the database migrations nor for the server's backlog of events from the previous workload.
Prefect is much slower than Plait, so the throughput and memory workloads use fewer executions,
and memory is measured during the back-to-back run instead of a run of its own.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "prefect_worker.py"

# Each entry runs in its own process, with its own server; arguments after the colons.
WORKLOADS = (
    "sequential:100:1000",
    "durable:1000",
    "fanout:1000",
    "back_to_back:60",  # also the memory workload
    "concurrent:100:50",
)
PROCESS_REPEAT = 3

ONE_TASK_FLOW = """\
from prefect import flow, task


@task
def a():
    return "x"


@flow
def one():
    return a()


if __name__ == "__main__":
    one()
"""


def prefect_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        DO_NOT_TRACK="1",
    )
    return env


def run_child(args: list[str], home: Path, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=prefect_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"Prefect workload {args} failed with exit code {done.returncode}")
    return done.stdout


def process_time(home: Path, repeat: int) -> dict[str, object]:
    """Median wall time of `python one.py`, a one-task flow, as a user runs it."""
    script = home.parent / "one.py"
    script.write_text(ONE_TASK_FLOW)
    run_child([str(script)], home)  # warm caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run_child([str(script)], home)
        times.append(time.perf_counter() - started)
    return {"value": statistics.median(times), "unit": "s", "n": repeat}


def main() -> None:
    results: dict[str, object] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        template = Path(tmp) / "template"
        started = time.perf_counter()
        run_child([str(WORKER), "warmup"], template)  # migrates the database
        timings["migrate"] = time.perf_counter() - started
        for name in WORKLOADS:
            key = name.split(":")[0]
            home = Path(tmp) / key / "home"
            shutil.copytree(template, home)
            started = time.perf_counter()
            out = run_child([str(WORKER), name], home)
            timings[key] = time.perf_counter() - started
            results.update(json.loads(out.strip().splitlines()[-1]))
            print(f"prefect {name}: {timings[key]:.0f} s", file=sys.stderr)
        home = Path(tmp) / "process" / "home"
        shutil.copytree(template, home)
        started = time.perf_counter()
        results["process"] = process_time(home, PROCESS_REPEAT)
        timings["process"] = time.perf_counter() - started
    info = {
        "engine": "Prefect",
        "version": version("prefect"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": results,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    print(json.dumps(info))


if __name__ == "__main__":
    main()
