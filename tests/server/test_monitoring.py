"""Metrics by task type, running and queued task runs, CORS, and slow clients (raw sockets)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from live_server import EXAMPLES, YAML, LiveServer, call, start_server, wait_state

ORIGIN = "https://ops.example.com"
SLOW = "id: slow\nnamespace: company.ops\ntasks:\n  - id: nap\n    type: plait.core.Sleep\n"
SLOW += "    duration: PT60S\n"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with CORS for one origin and a 2-second client timeout."""
    home = tmp_path_factory.mktemp("tuned") / "home"
    server = start_server(
        home, "--deploy", str(EXAMPLES),
        env={"PLAIT_CORS_ORIGINS": ORIGIN, "PLAIT_CLIENT_TIMEOUT": "2"},
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


async def metrics(live: LiveServer) -> str:
    async with aiohttp.ClientSession() as session, session.get(live.url + "/metrics") as r:
        return await r.text()


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_task_run_durations_by_type_and_running_gauge(tuned: LiveServer) -> None:
    await call(tuned, "POST", "/executions/examples/hello?wait=true", json={})
    text = await metrics(tuned)
    count = "plait_task_run_duration_seconds_count"
    # Counted under the canonical type, not the Kestra alias the flow file uses.
    assert sample(text, count, type="plait.core.Log", flow="hello") == 1
    assert sample(text, count, type="plait.core.Return", flow="hello") == 1
    await call(tuned, "POST", "/flows", data=SLOW, headers=YAML)
    started = await call(tuned, "POST", "/executions/company.ops/slow")
    for _ in range(400):
        if sample(await metrics(tuned), "plait_task_runs", state="running") == 1:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the running task run was never counted")
    await call(tuned, "DELETE", f"/executions/{started['id']}/kill")
    await wait_state(tuned, started["id"], "KILLED")
    text = await metrics(tuned)
    assert sample(text, "plait_task_runs", state="running") == 0
    assert sample(text, "plait_task_runs", state="queued") == 0


async def test_cors_only_for_the_configured_origins(tuned: LiveServer, live: LiveServer) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with aiohttp.ClientSession() as session:
        async with session.options(tuned.api + "/flows", headers=preflight) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            assert "X-CSRF-Token" in r.headers["Access-Control-Allow-Headers"]
        async with session.get(tuned.api + "/flows/search", headers={
            "Origin": ORIGIN, **tuned.headers()
        }) as r:  # fmt: skip
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert r.headers["Vary"] == "Origin"
        evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        async with session.options(tuned.api + "/flows", headers=evil) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        # CORS is off by default: no origin is allowed.
        async with session.options(live.api + "/flows", headers=preflight) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


def _raw(live: LiveServer, data: bytes, then: list[bytes] | None = None) -> tuple[bytes, float]:
    """Send ``data`` (then each of ``then`` 0.2 s apart), read until the server closes."""
    where = urlsplit(live.url)
    with socket.create_connection((where.hostname, where.port), timeout=60) as s:
        began = time.monotonic()
        s.sendall(data)
        for piece in then or []:
            time.sleep(0.2)
            s.sendall(piece)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
            if then is not None and b"\r\n\r\n" in received:
                break  # the answer to a complete request
        return received, time.monotonic() - began


async def test_slow_headers_are_cut(tuned: LiveServer) -> None:
    got, took = await asyncio.to_thread(_raw, tuned, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert got == b""  # closed without an answer (a socket timeout would raise instead)
    assert took < 55


async def test_a_stalled_body_is_cut_and_a_slow_steady_one_is_not(tuned: LiveServer) -> None:
    head = (
        "POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-yaml\r\n"
        f"Authorization: Bearer {tuned.token}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    got, _ = await asyncio.to_thread(_raw, tuned, head + b"id: stalled\n")
    assert got == b""
    assert re.search(r"stalled its request body for 2s \(POST /api/v1/flows", tuned.log())
    # A body that keeps coming, a little at a time, is not cut (16 pieces over 3 seconds).
    body = b"id: trickle\nnamespace: company.ops\ntasks:\n  - id: a\n    type: plait.core.Log\n"
    body += b"    message: hi\n"
    pieces = [body[i : i + 6] for i in range(0, len(body), 6)]
    head = head.replace(b"Content-Length: 1000", f"Content-Length: {len(body)}".encode())
    got, took = await asyncio.to_thread(_raw, tuned, head, pieces)
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert took > 2  # longer than the timeout in total
    await call(tuned, "GET", "/flows/company.ops/trickle")  # the server keeps serving
