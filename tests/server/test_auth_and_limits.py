"""Tokens, roles and namespace scopes, and bad input, over real HTTP against a live server."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess

import aiohttp
import pytest
from live_server import PLAIT, YAML, LiveServer, call

TEAM_FLOW = "id: job\nnamespace: company.team\ntasks:\n  - id: a\n    type: plait.core.Log\n"
TEAM_FLOW += "    message: hi\n"
JSON = {"Content-Type": "application/json"}
PDF = {"Content-Type": "application/pdf"}
HELLO = "/executions/examples/hello"
RENAMED = b"id: other\nnamespace: examples\ntasks:\n  - id: a\n    type: plait.core.Log\n"
RENAMED += b"    message: x\n"


def cli_token(live: LiveServer, *args: str) -> str:
    """``plait auth token create ...`` against the server's home: the token on stdout."""
    env = {**os.environ, "PLAIT_HOME": str(live.home)}
    done = subprocess.run(
        [str(PLAIT), "auth", "token", "create", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert re.fullmatch(r"plait_[A-Za-z0-9_-]{40,}", token)
    assert "shown once" in done.stderr
    return token


async def test_public_routes_and_401_for_everything_else(live: LiveServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/health", "/ready", "/metrics"):
            async with session.get(live.url + path) as response:
                assert response.status == 200, path
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with session.get(live.url + "/metrics") as response:
            assert "plait_api_requests_total" in await response.text()
        for method, path in (
            ("GET", "/flows/search"),
            ("POST", "/flows"),
            ("GET", "/executions/search"),
            ("POST", "/executions/examples/hello"),
            ("GET", "/tokens"),
        ):
            async with session.request(method, live.api + path) as response:
                assert response.status == 401, path
                body = await response.json()
                assert body["errorId"]
        headers = {"Authorization": "Bearer plait_not-a-real-token"}
        async with session.get(live.api + "/flows/search", headers=headers) as response:
            assert response.status == 401


async def test_namespace_scope_roles_and_revocation(live: LiveServer) -> None:
    editor = cli_token(live, "--name", "ci", "--role", "editor", "--namespace", "company.team")
    viewer = cli_token(live, "--name", "dash", "--role", "viewer")
    # The editor works inside company.team...
    await call(live, "POST", "/flows", data=TEAM_FLOW, headers=YAML, token=editor)
    done = await call(live, "POST", "/executions/company.team/job?wait=true", token=editor)
    assert done["state"]["current"] == "SUCCESS"
    # ...and sees nothing outside it: 404, as if it did not exist.
    await call(live, "GET", "/flows/examples/hello", token=editor, expect=404)
    await call(live, "POST", "/executions/examples/hello", token=editor, expect=404)
    outside = await call(live, "POST", "/executions/examples/hello?wait=true")
    await call(live, "GET", f"/executions/{outside['id']}", token=editor, expect=404)
    await call(live, "GET", f"/logs/{outside['id']}", token=editor, expect=404)
    other = TEAM_FLOW.replace("company.team", "company.other")
    await call(live, "POST", "/flows", data=other, headers=YAML, token=editor, expect=404)
    await call(live, "GET", "/flows/company.other/job", expect=404)  # nothing half-written
    listed = await call(live, "GET", "/executions/search", token=editor)
    assert {e["namespace"] for e in listed["results"]} == {"company.team"}
    flows = await call(live, "GET", "/flows/search", token=editor)
    assert {f["namespace"] for f in flows["results"]} == {"company.team"}
    # The viewer reads everything and changes nothing (403); tokens are for admins.
    await call(live, "GET", "/flows/examples/hello", token=viewer)
    await call(live, "POST", "/executions/examples/hello", token=viewer, expect=403)
    await call(live, "GET", "/tokens", token=editor, expect=403)
    # Revocation takes effect at once.
    tokens = await call(live, "GET", "/tokens")
    ci = next(t for t in tokens["results"] if t["name"] == "ci")
    assert "token" not in ci or ci["token"] is None
    await call(live, "DELETE", f"/tokens/{ci['id']}")
    await call(live, "GET", "/flows/company.team/job", token=editor, expect=401)
    made = await call(live, "POST", "/tokens", json={"name": "x", "role": "viewer"}, expect=201)
    await call(live, "GET", "/flows/examples/hello", token=made["token"])


#: A part header with a control character (schemathesis found it answered 500).
BAD_PART = b'--XB\r\nContent-Disposition: form-data; name="k\x1b"\r\n\r\nv\r\n--XB--\r\n'
BAD_PART_TYPE = {"Content-Type": "multipart/form-data; boundary=XB"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [
        ("POST", HELLO, {"data": b"{nope", "headers": JSON}, 400, "not valid JSON"),
        ("POST", HELLO, {"json": {"inputs": [1, 2]}}, 422, "inputs"),
        ("POST", HELLO, {"json": {"inputz": {}}}, 422, "inputz"),
        ("POST", HELLO, {"data": b"x", "headers": PDF}, 415, "Content-Type"),
        ("POST", HELLO, {"data": BAD_PART, "headers": BAD_PART_TYPE}, 400, "malformed multipart"),
        ("POST", "/executions/examples/conditional", {"json": {"inputs": {"amount": "x"}}}, 422,
         "amount"),
        ("POST", "/executions/no.such/flow", {}, 404, "not found"),
        ("POST", HELLO + "?revision=999", {}, 404, "revision 999"),
        ("POST", HELLO + "?wait=perhaps", {}, 400, "wait"),
        ("GET", "/executions/..%2F..%2Fetc%2Fpasswd", {}, 400, "invalid execution id"),
        ("GET", "/flows/exa$mples/hello", {}, 400, "invalid namespace"),
        ("GET", "/flows/examples/hello?revision=abc", {}, 400, "revision"),
        ("GET", "/executions/01nosuchexecution0000000000", {}, 404, "not found"),
        ("POST", "/flows", {"data": b"id: [unclosed", "headers": YAML}, 422, "flow.yaml:"),
        ("POST", "/flows", {"data": b"\xff\xfe", "headers": YAML}, 400, "UTF-8"),
        ("PUT", "/flows/examples/hello", {"data": RENAMED, "headers": YAML}, 422, "renamed"),
        ("POST", "/tokens", {"json": {"name": "x", "role": "god"}}, 422, "role"),
        ("POST", HELLO, {"data": io.BytesIO(b"a" * (11 << 20)), "headers": JSON}, 413, "too large"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_clear_4xx_and_the_server_keeps_serving(
    live: LiveServer, method: str, path: str, kwargs: dict[str, object], status: int, words: str
) -> None:
    body = await call(live, method, path, expect=status, **kwargs)
    text = json.dumps(body)
    assert words in text, text
    assert body["errorId"] in live.log() or await _logged(live, body["errorId"])
    hello = await call(live, "GET", "/flows/examples/hello")
    assert hello["revision"] == 1  # nothing changed by the bad request


async def _logged(live: LiveServer, error_id: str) -> bool:
    import asyncio

    for _ in range(100):
        if error_id in live.log():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_every_error_id_is_one_server_log_line(live: LiveServer) -> None:
    body = await call(live, "GET", "/flows/examples/nope", expect=404)
    assert await _logged(live, body["errorId"])
    assert sum(body["errorId"] in line for line in live.log().splitlines()) == 1


async def test_a_huge_form_field_is_413_without_being_read_whole(live: LiveServer) -> None:
    with aiohttp.MultipartWriter("form-data") as form:
        part = form.append(io.BytesIO(b"a" * (11 << 20)), {"Content-Type": "text/plain"})
        part.set_content_disposition("form-data", name="name")
    body = await call(live, "POST", HELLO, data=form, expect=413)
    assert "'name' is larger than" in body["message"]
    await call(live, "GET", "/flows/examples/hello")


async def test_a_namespace_admin_cannot_escape_its_namespace(live: LiveServer) -> None:
    spec = {"name": "team-admin", "role": "admin", "namespace": "company.team"}
    team_admin = (await call(live, "POST", "/tokens", json=spec, expect=201))["token"]
    for wider in ({"name": "x", "role": "admin"}, {"name": "x", "namespace": "company"}):
        refused = await call(live, "POST", "/tokens", json=wider, token=team_admin, expect=403)
        assert "limited to company.team" in refused["message"]
    narrower = {"name": "y", "role": "viewer", "namespace": "company.team.sub"}
    await call(live, "POST", "/tokens", json=narrower, token=team_admin, expect=201)
    listed = await call(live, "GET", "/tokens", token=team_admin)
    assert {t["namespace"] for t in listed["results"]} <= {"company.team", "company.team.sub"}
    everyone = await call(live, "GET", "/tokens")
    root = next(t for t in everyone["results"] if t["namespace"] is None)
    await call(live, "DELETE", f"/tokens/{root['id']}", token=team_admin, expect=404)
    await call(live, "GET", "/tokens")  # the root token still works
