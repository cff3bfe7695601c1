"""Triggers under load: `python bench/bench_triggers.py [--seconds 30]` (`make bench-triggers`).

1. Webhooks: bench_api's load generator (an aiohttp client in a process of its own, a fixed
   number of concurrent clients) posts GitHub-signed deliveries (each a distinct body,
   ``X-Hub-Signature-256`` and ``X-GitHub-Delivery``) to one flow's ``plait.core.Webhook``
   with ``verify: {provider: github}`` on ``plait server local`` (SQLite), and, in the same run
   with the same generator and the same signing work, to a do-nothing aiohttp handler (the
   machine's ceiling). The webhook answers once the execution is persisted, so its latency is
   request -> persisted execution. Then it counts the flow's executions (they must equal the
   requests accepted) and posts one delivery twice (the repeat must create nothing).
2. The scheduler: bench_scheduler.py (10,000 one-minute cron schedules).

Prints Markdown tables for docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench_api import github_signed, run_load, settle, start_ceiling, start_plait

SECRET = "It's a Secret to Everybody"  # GitHub's documented example secret
KEY = "bench-webhook-key-0123456789"
FLOW = f"""\
id: hook
namespace: bench
tasks:
  - id: only
    type: plait.core.Return
    format: "{{{{ trigger.body.n }}}}"
triggers:
  - id: github
    type: plait.core.Webhook
    key: {KEY}
    verify:
      provider: github
      secret: GITHUB_WEBHOOK_SECRET
"""


def count(home: Path) -> int:
    """The flow's executions, read from the server's SQLite file (the API lists pages)."""
    with sqlite3.connect(f"file:{home / 'plait.db'}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT count(*) FROM executions WHERE namespace = 'bench' AND flow_id = 'hook'"
        ).fetchone()
    return int(found[0])


def post(url: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request) as response:
        return dict(json.load(response))


def webhooks(seconds: float, client_counts: list[int]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    env = {"PLAIT_SECRET_GITHUB_WEBHOOK_SECRET": base64.b64encode(SECRET.encode()).decode()}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        server, url, token = start_plait(home, FLOW, env)
        ceiling, ceiling_url = start_ceiling()
        hook = f"{url}/api/v1/executions/webhook/bench/hook/{KEY}"
        try:
            time.sleep(2)
            accepted = 0
            for clients in client_counts:
                top = run_load(ceiling_url + "/noop", "", clients, seconds, github_secret=SECRET)
                got = run_load(hook, "", clients, seconds, github_secret=SECRET)
                accepted += got["accepted"]
                share = 100 * got["rps"] / top["rps"]
                rows.append((
                    f"do-nothing aiohttp handler, {clients} clients, {seconds:g} s",
                    f"{top['rps']:,.0f} req/s, p50 {top['p50_ms']:.2f} ms, "
                    f"p99 {top['p99_ms']:.2f} ms",
                ))  # fmt: skip
                rows.append((
                    f"GitHub-signed webhook -> persisted execution, {clients} clients",
                    f"{got['rps']:,.0f} req/s ({share:.0f}% of the ceiling), "
                    f"p50 {got['p50_ms']:.2f} ms, p99 {got['p99_ms']:.2f} ms, "
                    f"{got['accepted']:,} accepted"
                    + (f", {got['errors']} errors" if got["errors"] else ""),
                ))  # fmt: skip
                settle(url, token)
            created = count(home)
            rows.append((
                "executions created vs requests accepted",
                f"{created:,} vs {accepted:,} ({'equal' if created == accepted else 'DIFFERENT'})",
            ))  # fmt: skip
            body, headers = github_signed(SECRET, 0)
            first = post(hook, body, headers)
            again = post(hook, body, headers)
            settle(url, token)
            after = count(home)
            rows.append((
                "one delivery id posted twice",
                f"{after - created} execution created; same execution id answered: "
                f"{first['id'] == again['id']}",
            ))  # fmt: skip
        finally:
            ceiling.terminate()
            server.terminate()
            ceiling.wait(30)
            server.wait(120)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", default="4,16")
    parser.add_argument("--skip-scheduler", action="store_true")
    args = parser.parse_args()
    rows = webhooks(args.seconds, [int(c) for c in args.clients.split(",")])
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    sys.stdout.flush()
    if not args.skip_scheduler:
        print()
        subprocess.run(
            [sys.executable, str(Path(__file__).parent / "bench_scheduler.py")], check=True
        )


if __name__ == "__main__":
    main()
