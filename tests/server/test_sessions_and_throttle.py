"""Sessions kept in the database (restart, two processes, logout, password change, deletion) and
login throttling, over real HTTP against server subprocesses."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live_server import LiveServer, basic, cli, start_server
from plait.server._errors import ApiError
from plait.server._throttle import LoginThrottle

PASSWORD = "correct horse battery staple"


def plait(live: LiveServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return cli(live.home, *args, stdin=stdin)


async def login(url: str, name: str, password: str = PASSWORD) -> tuple[str, str]:
    """The session cookie and CSRF token of a login at the server at ``url``."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/api/v1/auth/login", json={"username": name, "password": password}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return r.cookies["plait_session"].value, (await r.json())["csrfToken"]


async def as_session(
    url: str, cookie: str, method: str = "GET", path: str = "/auth/me", **kwargs: Any
) -> int:
    headers = {"Cookie": f"plait_session={cookie}", **kwargs.pop("headers", {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url + "/api/v1" + path, headers=headers, **kwargs) as r,
    ):
        return r.status


async def test_sessions_survive_a_restart_and_are_shared_by_two_processes(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    second = start_server(home)  # another process on the same database
    restarted: LiveServer | None = None
    try:
        for name in ("ada", "grace"):
            done = await asyncio.to_thread(
                plait, first, "auth", "user", "create", name, "--role", "editor",
                stdin=PASSWORD + "\n",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        cookie, csrf = await login(first.url, "ada")
        # Only digests are stored: the table alone logs nobody in.
        with sqlite3.connect(home / "plait.db") as db:
            stored = db.execute("select id_hash, csrf_hash from sessions").fetchall()
        assert stored == [
            (hashlib.sha256(cookie.encode()).hexdigest(), hashlib.sha256(csrf.encode()).hexdigest())
        ]
        assert await as_session(second.url, cookie) == 200  # shared
        kv = "/namespaces/company.team/kv/k"
        assert await as_session(second.url, cookie, "PUT", kv, json={"value": 1}) == 403  # CSRF
        put = await as_session(
            second.url, cookie, "PUT", kv, json={"value": 1}, headers={"X-CSRF-Token": csrf}
        )
        assert put == 200
        first.stop(signal.SIGTERM)
        restarted = start_server(home)
        assert await as_session(restarted.url, cookie) == 200  # a restart keeps it
        # Logout on one process ends the session on every one.
        out = await as_session(
            second.url, cookie, "POST", "/auth/logout", headers={"X-CSRF-Token": csrf}
        )
        assert out == 200
        assert await as_session(restarted.url, cookie) == 401
        # A new password closes every session of the user (and only theirs).
        ada, _ = await login(restarted.url, "ada")
        grace, _ = await login(restarted.url, "grace")
        new = PASSWORD + " again"
        changed = await asyncio.to_thread(
            plait, restarted, "auth", "user", "password", "ada", stdin=new + "\n"
        )
        assert changed.returncode == 0, changed.stderr
        assert "sessions are closed" in changed.stdout
        assert await as_session(restarted.url, ada) == 401
        assert await as_session(second.url, ada) == 401
        assert await as_session(second.url, grace) == 200
        await login(second.url, "ada", new)
        missing = await asyncio.to_thread(
            plait, restarted, "auth", "user", "password", "nobody", stdin=new + "\n"
        )
        assert missing.returncode == 1
        assert "no user named nobody" in missing.stderr
        # Deleting a user deletes their sessions in the same transaction.
        deleted = await asyncio.to_thread(plait, restarted, "auth", "user", "delete", "grace")
        assert deleted.returncode == 0, deleted.stderr
        assert await as_session(second.url, grace) == 401
        with sqlite3.connect(home / "plait.db") as db:
            left = db.execute("select count(*) from sessions s join users u on u.id = s.user_id")
            everything = db.execute("select count(*) from sessions")
            assert left.fetchone() == everything.fetchone()  # none of grace's rows are left
    finally:
        for server in (first, second, restarted):
            if server is not None:
                server.stop()


async def _status(url: str, name: str, password: str, source: str) -> tuple[int, str | None]:
    """A login from the loopback address ``source`` (127.0.0.0/8 is all loopback on Linux)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            url + "/api/v1/auth/login", json={"username": name, "password": password}
        ) as r,
    ):
        return r.status, r.headers.get("Retry-After")


async def test_failed_logins_lock_out_the_user_and_the_address(tmp_path: Path) -> None:
    env = {"PLAIT_LOGIN_MAX_FAILURES": "2", "PLAIT_LOGIN_LOCKOUT": "60"}
    live = start_server(tmp_path / "home", env=env)
    try:
        for name in ("ada", "grace"):
            done = await asyncio.to_thread(
                plait, live, "auth", "user", "create", name, stdin=PASSWORD + "\n"
            )
            assert done.returncode == 0, done.stderr
        for _ in range(2):
            assert (await _status(live.url, "ada", "wrong", "127.0.0.1"))[0] == 401
        # ada is locked out, from any address, even with the right password (nothing checked).
        status, retry = await _status(live.url, "ada", PASSWORD, "127.0.0.2")
        assert status == 429
        assert retry is not None
        assert 1 <= int(retry) <= 60
        async with (
            aiohttp.ClientSession() as session,
            session.get(live.api + "/auth/me", headers=basic("ada", PASSWORD)) as r,
        ):
            assert r.status == 429  # basic auth is the same password check
            body = await r.json()
            assert "too many failed logins" in body["message"]
        # 127.0.0.1 is locked out for every user; another address is not.
        assert (await _status(live.url, "grace", PASSWORD, "127.0.0.1"))[0] == 429
        assert (await _status(live.url, "grace", PASSWORD, "127.0.0.3"))[0] == 200
    finally:
        live.stop()


def test_lockouts_double_up_to_the_longest_and_are_forgotten() -> None:
    now = [0.0]
    throttle = LoginThrottle(
        max_failures=2,
        lockout=1,
        lockout_max=4,
        window=100,
        concurrency=1,
        queue=0,
        clock=lambda: now[0],
    )
    waits = []
    for _ in range(5):
        throttle.failed("Ada", "10.0.0.1")
        try:
            throttle.check("ada", "10.0.0.9")  # names compare case-insensitively
            waits.append(0)
        except ApiError as error:
            waits.append(int(error.headers["Retry-After"]))
    assert waits == [0, 1, 2, 4, 4]
    now[0] = 5
    throttle.check("ada", "10.0.0.9")  # the lockout is over (the count is not)
    throttle.failed("ada", "10.0.0.9")
    with pytest.raises(ApiError):
        throttle.check("ada", "10.0.0.9")
    now[0] = 200  # past the window: forgotten
    throttle.check("ada", "10.0.0.1")
    throttle.failed("ada", "10.0.0.1")
    throttle.check("ada", "10.0.0.1")
    throttle.succeeded("ada")
    throttle.check("ada", "10.0.0.1")


async def test_password_checks_run_a_bounded_number_at_once() -> None:
    throttle = LoginThrottle(
        max_failures=5, lockout=1, lockout_max=1, window=1, concurrency=1, queue=1
    )
    gate = asyncio.Event()
    running = []

    async def slow_check() -> str:
        running.append(1)
        await gate.wait()
        return "ok"

    first = asyncio.create_task(throttle.verify(slow_check))
    second = asyncio.create_task(throttle.verify(slow_check))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(running) == 1  # the second waits for the slot
    with pytest.raises(ApiError) as refused:
        await throttle.verify(slow_check)  # the queue is full: refused at once
    assert refused.value.status == 429
    gate.set()
    assert await first == "ok"
    assert await second == "ok"
    assert len(running) == 2
