"""Server CPU per request, one client: `python bench/bench_cpu.py [-n 500]` (`make bench-cpu`).

On a machine shared with other work, requests a second say more about the neighbours than about
the server; the CPU time the server's process spends per request (user + system, from
``/proc/<pid>/stat``) moves far less. One client sends ``-n`` requests one after another over a
kept-alive connection to ``plait server local`` (SQLite, the four connectors installed) and the
server's CPU is read before and after (after every created execution has ended, so a created
execution's figure includes running it):

1. ``POST /api/v1/executions/bench/one`` (a one-task flow, ``plait.core.Return``): created;
2. the same with ``?wait=true``: POST-to-SUCCESS;
3. a GitHub-signed delivery to a ``plait.core.Webhook`` with ``verify: {provider: github}``.

``--profile FILE`` runs the server under cProfile (statistics to FILE when it stops).
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench_api import cpu_seconds, github_signed, settle, start_plait
from bench_triggers import FLOW as HOOK_FLOW
from bench_triggers import KEY, SECRET

FLOWS = {
    "one.yaml": """\
id: one
namespace: bench
tasks:
  - id: only
    type: plait.core.Return
    format: done
""",
    "hook.yaml": HOOK_FLOW,
}


def measure(
    url: str, path: str, n: int, token: str = "", signed: bool = False
) -> tuple[list[float], int]:
    """``n`` POSTs to ``path`` on one kept-alive connection: latencies (s), non-2xx count."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    errors = 0
    try:
        for i in range(n):
            body, extra = "{}", {}
            if signed:
                body, extra = github_signed(SECRET, i)
            began = time.perf_counter()
            conn.request("POST", path, body=body, headers={**headers, **extra})
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - began)
            if response.status not in (200, 201):
                errors += 1
    finally:
        conn.close()
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--profile")
    parser.add_argument("--only", help="comma-separated case numbers (1-3) to run")
    args = parser.parse_args()
    env = {"PLAIT_SECRET_GITHUB_WEBHOOK_SECRET": base64.b64encode(SECRET.encode()).decode()}
    cases = [
        ("created (then run), `POST /api/v1/executions/bench/one`",
         "/api/v1/executions/bench/one", False),
        ("POST-to-SUCCESS, `?wait=true`", "/api/v1/executions/bench/one?wait=true", False),
        ("GitHub-signed webhook -> persisted execution (then run)",
         f"/api/v1/executions/webhook/bench/hook/{KEY}", True),
    ]  # fmt: skip
    if args.only:
        cases = [cases[int(i) - 1] for i in args.only.split(",")]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        flows = Path(tmp) / "flows"
        flows.mkdir()
        for name, text in FLOWS.items():
            (flows / name).write_text(text)
        server, url, token = start_plait(home, FLOWS["one.yaml"], env, args.profile, flows)
        try:
            for name, path, signed in cases:
                auth = "" if signed else token
                measure(url, path, max(20, args.n // 10), auth, signed)  # warm-up
                settle(url, token)
                cpu = cpu_seconds(server.pid)
                latencies, errors = measure(url, path, args.n, auth, signed)
                settle(url, token)
                cpu = cpu_seconds(server.pid) - cpu
                rows.append((
                    name,
                    f"{1000 * cpu / args.n:.2f} ms CPU per request; p50 "
                    f"{1000 * statistics.median(latencies):.2f} ms (one client)"
                    + (f", {errors} errors" if errors else ""),
                ))  # fmt: skip
        finally:
            server.terminate()
            server.wait(60)
    print(f"| measure (n={args.n}) | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
