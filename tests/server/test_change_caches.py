"""The server keeps its token checks and flow lookups while the database's change counter stands
still; a change made by ANOTHER process (the CLI on the server's home) is seen on the very next
request: a revoked token is refused, a new flow revision is the one started, a disabled or
re-keyed webhook stops answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from live_server import LiveServer, call, cli, start_server

FLOW = """\
id: cached
namespace: caches
tasks:
  - id: only
    type: plait.core.Return
    format: "{text}"
triggers:
  - id: hook
    type: plait.core.Webhook
    key: {key}
"""
OLD_KEY = "old-key-0123456789"
NEW_KEY = "new-key-0123456789"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "cached.yaml").write_text(FLOW.format(text="one", key=OLD_KEY))
    server = start_server(tmp_path / "home", "--deploy", str(flows))
    try:
        yield server
    finally:
        server.stop()


def deploy_elsewhere(live: LiveServer, tmp_path: Path, text: str, key: str) -> None:
    """A new revision, stored by another process (``plait flows deploy`` on the same home)."""
    path = tmp_path / "next" / "cached.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(FLOW.format(text=text, key=key))
    done = cli(live.home, "flows", "deploy", str(path))
    assert done.returncode == 0, done.stderr


async def hook(live: LiveServer, key: str) -> int:
    url = f"{live.api}/executions/webhook/caches/cached/{key}"
    async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
        await response.read()
        return response.status


async def test_token_revoked_by_another_process_is_refused_on_the_next_request(
    live: LiveServer,
) -> None:
    made = await call(live, "POST", "/tokens", json={"name": "ci", "role": "editor"}, expect=201)
    for _ in range(3):  # checked once, then from the cache
        await call(live, "POST", "/executions/caches/cached", token=made["token"])
    done = cli(live.home, "auth", "token", "revoke", made["id"])
    assert done.returncode == 0, done.stderr
    refused = await call(live, "POST", "/executions/caches/cached", token=made["token"], expect=401)
    assert "revoked" in refused["message"]


async def test_token_revoked_through_the_api_is_refused_on_the_next_request(
    live: LiveServer,
) -> None:
    made = await call(live, "POST", "/tokens", json={"name": "ci", "role": "viewer"}, expect=201)
    await call(live, "GET", "/flows/caches", token=made["token"])
    await call(live, "DELETE", f"/tokens/{made['id']}")
    await call(live, "GET", "/flows/caches", token=made["token"], expect=401)


async def test_flow_deployed_by_another_process_is_started_on_the_next_request(
    live: LiveServer, tmp_path: Path
) -> None:
    first = await call(live, "POST", "/executions/caches/cached")
    again = await call(live, "POST", "/executions/caches/cached")
    assert first["flowRevision"] == again["flowRevision"]
    deploy_elsewhere(live, tmp_path, "two", OLD_KEY)
    after = await call(live, "POST", "/executions/caches/cached")
    assert after["flowRevision"] == first["flowRevision"] + 1


async def test_webhook_sees_another_process_disable_and_rekey_at_once(
    live: LiveServer, tmp_path: Path
) -> None:
    assert await hook(live, OLD_KEY) == 200
    assert await hook(live, OLD_KEY) == 200  # from the cache
    off = cli(live.home, "triggers", "disable", "caches", "cached", "hook")
    assert off.returncode == 0, off.stderr
    assert await hook(live, OLD_KEY) == 404
    on = cli(live.home, "triggers", "enable", "caches", "cached", "hook")
    assert on.returncode == 0, on.stderr
    assert await hook(live, OLD_KEY) == 200
    deploy_elsewhere(live, tmp_path, "two", NEW_KEY)
    assert await hook(live, OLD_KEY) == 404
    assert await hook(live, NEW_KEY) == 200
