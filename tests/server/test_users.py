"""People over real HTTP: users created with the real CLI, basic auth, session cookie + CSRF."""

from __future__ import annotations

import asyncio
import base64
import subprocess

import aiohttp
from live_server import LiveServer, basic, call, cli

PASSWORD = "correct horse battery staple"


def plait(live: LiveServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return cli(live.home, *args, stdin=stdin)


async def test_user_create_hashes_with_argon2_and_basic_auth(live: LiveServer) -> None:
    done = await asyncio.to_thread(
        plait, live, "auth", "user", "create", "ada", "--role", "editor",
        "--namespace", "company.team", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    # Only an Argon2id hash is stored.
    import sqlite3

    with sqlite3.connect(live.home / "plait.db") as db:
        (stored,) = db.execute("select password_hash from users where name='ada'").fetchone()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    again = await asyncio.to_thread(
        plait, live, "auth", "user", "create", "ada", stdin=PASSWORD + "\n"
    )
    assert again.returncode != 0
    assert "already exists" in again.stderr
    short = await asyncio.to_thread(plait, live, "auth", "user", "create", "bob", stdin="short\n")
    assert short.returncode != 0
    assert "at least" in short.stderr

    async with aiohttp.ClientSession() as session:
        async with session.get(live.api + "/auth/me", headers=basic("ada", PASSWORD)) as r:
            assert r.status == 200
            me = await r.json()
            assert (me["name"], me["role"], me["namespace"]) == ("ada", "editor", "company.team")
        for headers in (
            basic("ada", "wrong password!"),
            basic("nobody", PASSWORD),
            {"Authorization": "Basic !!!notbase64"},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        ):
            async with session.get(live.api + "/auth/me", headers=headers) as r:
                assert r.status == 401, headers
                assert "Basic" in r.headers["WWW-Authenticate"]
        # The namespace scope and the role apply to users as to tokens.
        async with session.get(
            live.api + "/executions/search?namespace=examples", headers=basic("ada", PASSWORD)
        ) as r:
            assert r.status == 200
            assert (await r.json())["results"] == []
        async with session.get(live.api + "/tokens", headers=basic("ada", PASSWORD)) as r:
            assert r.status == 403


async def test_session_cookie_login_csrf_logout_and_deletion(live: LiveServer) -> None:
    done = await asyncio.to_thread(
        plait, live, "auth", "user", "create", "grace", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    jar = aiohttp.CookieJar(unsafe=True)  # loopback by IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(
            live.api + "/auth/login", json={"username": "grace", "password": "nope"}
        ) as r:
            assert r.status == 401
        async with session.post(
            live.api + "/auth/login", json={"username": "grace", "password": PASSWORD}
        ) as r:
            assert r.status == 200
            csrf = (await r.json())["csrfToken"]
            cookie = r.headers["Set-Cookie"]
            stolen = {"Cookie": f"plait_session={r.cookies['plait_session'].value}"}
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/api" in cookie
        async with session.get(live.api + "/auth/me") as r:
            assert r.status == 200
            assert (await r.json())["name"] == "grace"
        # An unsafe method with only the cookie (what a cross-site form sends) is refused.
        kv = live.api + "/namespaces/company.team/kv/k"
        async with session.put(kv, json={"value": 1}) as r:
            assert r.status == 403
            assert "X-CSRF-Token" in (await r.json())["message"]
        async with session.put(kv, json={"value": 1}, headers={"X-CSRF-Token": "forged"}) as r:
            assert r.status == 403
        async with session.get(live.api + "/namespaces/company.team/kv") as r:
            assert (await r.json())["results"] == []  # nothing was written
        async with session.put(kv, json={"value": 1}, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        # Logout needs the CSRF token too, and ends the session at once.
        async with session.post(live.api + "/auth/logout") as r:
            assert r.status == 403
        async with session.post(live.api + "/auth/logout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
    async with (
        aiohttp.ClientSession() as fresh,
        fresh.get(live.api + "/auth/me", headers=stolen) as r,
    ):
        assert r.status == 401
    # A deleted user's session stops working at once.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(
            live.api + "/auth/login", json={"username": "grace", "password": PASSWORD}
        ) as r:
            assert r.status == 200
        gone = await asyncio.to_thread(plait, live, "auth", "user", "delete", "grace")
        assert gone.returncode == 0, gone.stderr
        async with session.get(live.api + "/auth/me") as r:
            assert r.status == 401
        async with session.get(live.api + "/auth/me", headers=basic("grace", PASSWORD)) as r:
            assert r.status == 401
    assert PASSWORD not in live.log()


async def test_login_bad_input(live: LiveServer) -> None:
    for body, status in (("{", 400), ('{"username": "x"}', 422), ("", 400)):
        await call(live, "POST", "/auth/login", data=body, expect=status,
                   headers={"Content-Type": "application/json"})  # fmt: skip
