"""plait-scripts and plait-s3 benchmarks: `.venv/bin/python bench/bench_scripts_s3.py [--runs N]`.

- Script task overhead: the median wall time of a `plait.scripts.python.Script` task running
  `pass`, called directly with a minimal RunContext, over the median of a bare
  `subprocess.run([python, "-c", "pass"])` of the same interpreter (the one the task finds on
  `PATH`: this interpreter's directory is put first, as in an activated venv). The two are
  measured alternately, so that load from other processes hits both alike.
- Shell task overhead: `plait.scripts.shell.Commands` running `true` over `sh -c true`.
- S3 throughput: `plait.s3.Upload` then `plait.s3.Download` of a 64 MiB object (internal storage
  on the local disk) against moto's S3 server on loopback, next to the same transfers made with
  a raw aiobotocore client (one PutObject, one streamed GetObject).

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _context import BenchContext
from plait_s3 import Download, Upload, plugin
from plait_scripts import PythonScript, ShellCommands

MiB = 1 << 20
TARGET = 1.2


# -- script tasks --------------------------------------------------------------------------------


def spawn(argv: list[str]) -> float:
    """Wall time of one bare ``subprocess.run`` (blocking on purpose: the baseline)."""
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


async def overhead(
    runs: int, bare: list[str], task: PythonScript | ShellCommands, root: Path
) -> tuple[float, float]:
    """Median wall times (seconds) of the bare command and of the task, measured alternately."""
    bare_times: list[float] = []
    task_times: list[float] = []
    for _ in range(3):  # warm-up: imports, page cache, the interpreter's own caches
        spawn(bare)
        await task.run(BenchContext(root))
    for _ in range(runs):
        bare_times.append(spawn(bare))
        ctx = BenchContext(root)
        started = time.perf_counter()
        out = await task.run(ctx)
        task_times.append(time.perf_counter() - started)
        assert out.exit_code == 0
    return statistics.median(bare_times), statistics.median(task_times)


# -- S3 -------------------------------------------------------------------------------------------

_MOTO = textwrap.dedent(
    """
    import logging, sys
    logging.disable(logging.CRITICAL)
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()
    """
)
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAPLAITBENCH000000",
    "AWS_SECRET_ACCESS_KEY": "plait-bench-dummy-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/plait-bench/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/plait-bench/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


async def s3_throughput(size: int, runs: int, root: Path) -> dict[str, float]:
    """MB/s (10^6 bytes a second) of each transfer, best of ``runs``."""
    os.environ.update(_AWS_ENV)
    moto, endpoint = start_moto()
    try:
        return await _transfers(endpoint, size, runs, root)
    finally:
        stop_moto(moto)


def start_moto() -> tuple[subprocess.Popen[str], str]:
    """moto's S3 server in a child process (its CPU is not this process's); its endpoint."""
    moto = subprocess.Popen(
        [sys.executable, "-c", _MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert moto.stdout is not None
    return moto, f"http://127.0.0.1:{int(moto.stdout.readline())}"


def stop_moto(moto: subprocess.Popen[str]) -> None:
    assert moto.stdin is not None
    assert moto.stdout is not None
    moto.stdin.close()
    moto.wait(timeout=30)
    moto.stdout.close()


async def _transfers(endpoint: str, size: int, runs: int, root: Path) -> dict[str, float]:
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    conn = {"endpointOverride": endpoint, "forcePathStyle": True, "region": "us-east-1"}
    payload = os.urandom(size)
    ctx = BenchContext(root)
    uri = await ctx.storage.put("blob.bin", payload)
    results: dict[str, list[float]] = {k: [] for k in ("upload", "download", "put", "get")}
    session = get_session()
    async with session.create_client("s3", endpoint_url=endpoint, region_name="us-east-1") as raw:
        await raw.create_bucket(Bucket="bench")
        for i in range(runs):
            started = time.perf_counter()
            up = await Upload.model_validate(
                {**conn, "from": uri, "bucket": "bench", "key": f"task/{i}"}
            ).run(ctx)
            results["upload"].append(time.perf_counter() - started)
            assert up.key == f"task/{i}"
            started = time.perf_counter()
            down = await Download.model_validate(
                {**conn, "bucket": "bench", "key": f"task/{i}"}
            ).run(ctx)
            results["download"].append(time.perf_counter() - started)
            assert down.content_length == size

            started = time.perf_counter()
            await raw.put_object(Bucket="bench", Key=f"raw/{i}", Body=payload)
            results["put"].append(time.perf_counter() - started)
            started = time.perf_counter()
            got = await raw.get_object(Bucket="bench", Key=f"raw/{i}")
            received = 0
            async with got["Body"] as body:
                while chunk := await body.read(MiB):
                    received += len(chunk)
            results["get"].append(time.perf_counter() - started)
            assert received == size
            for key in (f"task/{i}", f"raw/{i}"):
                await raw.delete_object(Bucket="bench", Key=key)
    await plugin.plait_shutdown()
    return {name: size / 1e6 / min(times) for name, times in results.items()}


# -- main -----------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def main(runs: int, s3_runs: int, s3_size: int) -> None:
    # The task runs `python3` from PATH: make that this interpreter, as in an activated venv.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    python = shutil.which("python3")
    shell = shutil.which("sh")
    assert python is not None
    assert shell is not None
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="plait-bench-") as tmp:
        root = Path(tmp)
        bare, task = await overhead(runs, [python, "-c", "pass"], PythonScript(script="pass"), root)
        ratio = task / bare
        verdict = "ok" if ratio <= TARGET else f"above the {TARGET}x target"
        rows += [
            ("bare `python3 -c pass` (subprocess.run), median", _ms(bare), ""),
            ("`plait.scripts.python.Script` (`pass`), median", _ms(task), ""),
            ("Python script task overhead", f"{ratio:.2f}x", f"{_ms(task - bare)}; {verdict}"),
        ]
        bare, task = await overhead(
            runs, [shell, "-c", "true"], ShellCommands(commands=["true"]), root
        )
        rows += [
            ("bare `sh -c true` (subprocess.run), median", _ms(bare), ""),
            ("`plait.scripts.shell.Commands` (`true`), median", _ms(task), ""),
            ("Shell task overhead", f"{task / bare:.2f}x", f"{_ms(task - bare)} a task"),
        ]
        if s3_runs:
            speeds = await s3_throughput(s3_size, s3_runs, root)
            mb = s3_size // MiB
            rows += [
                (
                    f"`plait.s3.Upload` of {mb} MiB (multipart, 8 MiB parts)",
                    f"{speeds['upload']:.0f} MB/s",
                    "",
                ),
                (
                    f"`plait.s3.Download` of {mb} MiB (streamed)",
                    f"{speeds['download']:.0f} MB/s",
                    "",
                ),
                (
                    f"raw aiobotocore PutObject of {mb} MiB",
                    f"{speeds['put']:.0f} MB/s",
                    "reference",
                ),
                (
                    f"raw aiobotocore GetObject of {mb} MiB, streamed",
                    f"{speeds['get']:.0f} MB/s",
                    "reference",
                ),
            ]
    command = shlex.join([".venv/bin/python", "bench/bench_scripts_s3.py", *sys.argv[1:]])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"`{command}`\n")
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load}; {runs} runs of each command, "
        f"S3: best of {s3_runs} against moto's ThreadedMotoServer on 127.0.0.1.\n"
    )
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    parser.add_argument("--s3-runs", type=int, default=3, help="S3 transfers of each kind; 0: none")
    parser.add_argument("--s3-mib", type=int, default=64, help="object size in MiB (default 64)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.s3_runs, arguments.s3_mib * MiB))
