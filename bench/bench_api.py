"""The hub server's API under load: `python bench/bench_api.py [--quick]` (or `make bench-api`).

In one run, with the same load generator (an aiohttp client in a process of its own, a fixed
number of concurrent clients each sending its next request when the last one answered, for a
fixed time), it measures on loopback:

1. a do-nothing aiohttp handler in a process of its own: the machine's ceiling;
2. ``POST /api/v1/executions/bench/one`` on ``plait server local`` (SQLite): executions created
   and persisted a second (the one-task flow then runs in the server's background);
3. ``POST ...?wait=true``: POST-to-SUCCESS latency of the one-task flow;
4. the idle server's resident memory, measured right after start-up (every installed
   connector loaded).

Prints a Markdown table for docs/performance.md. ``--profile FILE`` runs the server under
``cProfile`` (slower: read the ratios between its entries, not the figures) and writes its
statistics to FILE when it stops (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLAIT = Path(sys.executable).parent / "plait"
FLOW = """\
id: one
namespace: bench
tasks:
  - id: only
    type: plait.core.Return
    format: done
"""
#: Seconds one request of the load generator may take before it counts as an error.
REQUEST_TIMEOUT = 30.0


# -- the two servers' processes ----------------------------------------------------------------


def ceiling_server(port: int) -> None:
    """A do-nothing aiohttp handler: answers every POST with a small JSON body."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "x", "state": {"current": "CREATED"}})

    app = web.Application()
    app.router.add_post("/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def profiled_server(out: str, argv: list[str]) -> None:
    """``plait server local`` in this process under cProfile, statistics written to ``out``
    once it stops (the console script ends with ``os._exit``, which would lose them)."""
    import cProfile

    from plait.cli import cli

    profile = cProfile.Profile()
    profile.enable()
    try:
        cli.main(argv, standalone_mode=False)
    finally:
        profile.disable()
        profile.dump_stats(out)


def start_plait(
    home: Path,
    flow: str = FLOW,
    env: dict[str, str] | None = None,
    profile: str | None = None,
    flows: Path | None = None,
    need_token: bool = True,
) -> tuple[subprocess.Popen[str], str, str]:
    """``plait server local`` deploying ``flow`` (or every flow file of ``flows``); the admin
    token it printed (a restarted server prints none: ``need_token=False``)."""
    if flows is None:
        flows = home.parent / "flows"
        flows.mkdir(parents=True, exist_ok=True)
        (flows / "one.yaml").write_text(flow)
    env = {**os.environ, "PLAIT_HOME": str(home), **(env or {})}
    command = [str(PLAIT)]
    if profile:
        command = [sys.executable, __file__, "--profiled-server", profile, "--"]
    process = subprocess.Popen(
        [*command, "server", "local", "--port", "0", "--deploy", str(flows)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=env, cwd=str(home.parent),
    )  # fmt: skip
    assert process.stderr is not None
    url = token = ""
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if m := re.search(r"listening on (http://\S+)", line):
            url = m.group(1)
        if m := re.search(r"admin token \(shown once, keep it\): (\S+)", line):
            token = m.group(1)
        if line.startswith("try:"):
            break
    if not url or (need_token and not token):
        process.kill()
        raise SystemExit("the server did not start:\n" + "".join(seen))
    return process, url, token


def start_ceiling() -> tuple[subprocess.Popen[str], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--ceiling-server", str(port)], text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the ceiling server did not start")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far: per request, a measure that the
    machine's other load disturbs far less than requests a second do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the load generator (a process of its own) -------------------------------------------------


def github_signed(secret: str, n: int) -> tuple[str, dict[str, str]]:
    """The ``n``-th GitHub-style delivery: a unique body, its ``X-Hub-Signature-256`` and a
    unique ``X-GitHub-Delivery``."""
    import hashlib
    import hmac
    import uuid

    body = json.dumps({"ref": "refs/heads/main", "n": n, "after": uuid.uuid4().hex})
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return body, {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


async def load(
    url: str, token: str, clients: int, seconds: float, body: str, github_secret: str = ""
) -> dict[str, Any]:
    """``clients`` concurrent clients for ``seconds``; with ``github_secret`` each request is
    a distinct GitHub-signed delivery (:func:`github_signed`). ``accepted``: 200/201 answers."""
    import aiohttp

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=clients)
    # A server that stops answering must end the measure, not hang it: each request has a
    # deadline (a timed-out request counts as an error), and so has the whole run.
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        stop = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal errors, sent
            while time.perf_counter() < stop:
                data, extra = body, {}
                if github_secret:
                    sent += 1
                    data, extra = github_signed(github_secret, sent)
                began = time.perf_counter()
                try:
                    async with session.post(
                        url, data=data, headers={**headers, **extra}
                    ) as response:
                        await response.read()
                        if response.status not in (200, 201):
                            errors += 1
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(client() for _ in range(clients))), seconds + REQUEST_TIMEOUT + 5
        )
        took = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "accepted": len(latencies) - errors,
        "errors": errors,
        "rps": len(latencies) / took,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def run_load(
    url: str, token: str, clients: int, seconds: float, body: str = "{}", github_secret: str = ""
) -> Any:
    done = subprocess.run(
        [sys.executable, __file__, "--load", url, "--token", token, "--clients", str(clients),
         "--seconds", str(seconds), "--body", body, "--github-secret", github_secret],
        capture_output=True, text=True, check=True, timeout=seconds + REQUEST_TIMEOUT + 60,
    )  # fmt: skip
    return json.loads(done.stdout)


def settle(url: str, token: str, timeout: float = 600) -> None:
    """Wait until the executions the load created have all ended."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{url}/api/v1/executions/search?state=CREATED&state=RUNNING&size=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request) as response:
            if not json.load(response)["results"]:
                return
        time.sleep(0.5)
    raise SystemExit(f"executions still running after {timeout:g} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ceiling-server", type=int)
    parser.add_argument("--load")
    parser.add_argument("--token", default="")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--body", default="{}")
    parser.add_argument("--github-secret", default="")
    parser.add_argument("--profile", help="run the server under cProfile, stats to this file")
    parser.add_argument("--profiled-server", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.profiled_server:
        profiled_server(args.profiled_server, [a for a in rest if a != "--"])
        return
    if args.ceiling_server:
        ceiling_server(args.ceiling_server)
        return
    if args.load:
        result = asyncio.run(
            load(args.load, args.token, args.clients, args.seconds, args.body, args.github_secret)
        )
        print(json.dumps(result))
        return

    seconds = 3.0 if args.quick else 10.0
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url, token = start_plait(Path(tmp) / "home", profile=args.profile)
        ceiling, ceiling_url = start_ceiling()
        try:
            time.sleep(2)
            rows.append(("idle server RSS after start-up", f"{rss_mib(server.pid):.0f} MiB"))
            create = f"{url}/api/v1/executions/bench/one"
            for clients in (4, 16):
                top = run_load(ceiling_url + "/noop", "", clients, seconds)
                cpu = cpu_seconds(server.pid)
                got = run_load(create, token, clients, seconds)
                settle(url, token)
                cpu = cpu_seconds(server.pid) - cpu
                share = 100 * got["rps"] / top["rps"]
                rows.append((
                    f"do-nothing aiohttp handler, {clients} clients",
                    f"{top['rps']:,.0f} req/s, p50 {top['p50_ms']:.2f} ms, "
                    f"p99 {top['p99_ms']:.2f} ms",
                ))  # fmt: skip
                rows.append((
                    f"executions created via the API, {clients} clients",
                    f"{got['rps']:,.0f} /s ({share:.0f}% of the ceiling), "
                    f"p50 {got['p50_ms']:.2f} ms, p99 {got['p99_ms']:.2f} ms; server CPU "
                    f"{1000 * cpu / max(1, got['requests']):.2f} ms per execution (created and run)"
                    + (f", {got['errors']} errors" if got["errors"] else ""),
                ))  # fmt: skip
            done = run_load(create + "?wait=true", token, 4, seconds)
            rows.append((
                "POST-to-SUCCESS of the one-task flow, 4 clients",
                f"p50 {done['p50_ms']:.2f} ms, p99 {done['p99_ms']:.2f} ms "
                f"({done['rps']:,.0f} /s)",
            ))  # fmt: skip
            settle(url, token)
            rows.append(("server RSS after the run", f"{rss_mib(server.pid):.0f} MiB"))
        finally:
            ceiling.terminate()
            server.terminate()
            ceiling.wait(30)
            server.wait(60)
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
