"""A live ``plait server local`` in a subprocess on a free loopback port, for real-HTTP tests."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLAIT = Path(sys.executable).parent / "plait"
YAML = {"Content-Type": "application/x-yaml"}


@dataclass
class LiveServer:
    """A server process: its URL, the admin token it printed, and its stderr so far."""

    process: subprocess.Popen[str]
    url: str
    token: str | None
    home: Path
    lines: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_server(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> LiveServer:
    """Start ``plait server local --port 0`` and wait until it printed its URL."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PLAIT_MASTER_KEY", "PLAIT_CONFIG")}
    environ.update({"PLAIT_HOME": str(home), **(env or {})})
    process = subprocess.Popen(
        [str(PLAIT), "server", "local", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        cwd=str(home.parent),
    )
    assert process.stderr is not None
    lines: list[str] = []
    url = token = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"listening on (http://\S+)", line):
            url = m.group(1)
        if m := re.search(r"admin token \(shown once, keep it\): (\S+)", line):
            token = m.group(1)
        if line.startswith("try:"):
            break
    if url is None:
        process.kill()
        process.wait()
        process.stderr.close()
        raise AssertionError("the server did not start:\n" + "".join(lines))
    server = LiveServer(process, url, token, home, lines)

    def drain() -> None:
        assert process.stderr is not None
        with process.stderr:
            for rest in process.stderr:
                lines.append(rest)

    threading.Thread(target=drain, daemon=True).start()
    return server


def cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real CLI on the home ``home`` (a server's own, to manage its users)."""
    env = {**os.environ, "PLAIT_HOME": str(home)}
    return subprocess.run(
        [str(PLAIT), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip


def basic(name: str, password: str) -> dict[str, str]:
    """HTTP basic auth headers."""
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def call(
    live: LiveServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    expect: int = 200,
    **kwargs: Any,
) -> Any:
    headers = {**live.headers(token), **kwargs.pop("headers", {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, live.api + path, headers=headers, **kwargs) as response,
    ):
        text = await response.text()
        assert response.status == expect, f"{method} {path}: {response.status} {text}"
        assert "Traceback" not in text
        return json.loads(text) if "json" in response.content_type else text


async def wait_state(live: LiveServer, execution_id: str, *states: str) -> dict[str, Any]:
    for _ in range(600):
        found = await call(live, "GET", f"/executions/{execution_id}")
        if found["state"]["current"] in states:
            return found  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{execution_id} never reached {states}: {found['state']}")
