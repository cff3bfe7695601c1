"""Idle server memory: `python bench/bench_memory.py` (`make bench-memory`).

Starts ``plait server local`` (SQLite, the connectors installed in this environment loaded, the
one-task bench flow deployed) on a fresh home (its first start runs the database migrations),
then again on the same home (a restart), and prints each one's resident memory (``VmRSS``)
``--settle`` seconds after it printed its URL. Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_api import rss_mib, start_plait


def plugins() -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "plait"), "plugins", "list"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return f"{done.stdout.count(' ok')} plugins ok"


def idle_rss(home: Path, settle: float) -> float:
    server, _url, _token = start_plait(home, need_token=False)
    try:
        time.sleep(settle)
        return rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        first = idle_rss(home, args.settle)
        again = idle_rss(home, args.settle)
    print(f"| measure ({plugins()}) | value |\n| --- | --- |")
    print(f"| idle server RSS, first start (migrations run) | {first:.0f} MiB |")
    print(f"| idle server RSS, restart (schema up to date) | {again:.0f} MiB |")


if __name__ == "__main__":
    main()
