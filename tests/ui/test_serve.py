"""/ui over real HTTP: the bundle, its caching and security headers, the SPA fallback, a
checkout without a bundle; and the flow schema the editor completes with."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from live_server import LiveServer, call
from plait.server._ui import IMMUTABLE, install
from yarl import URL


async def _serve(bundle: Path) -> AsyncIterator[str]:
    app = web.Application()
    install(app, bundle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "ui_dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>app</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(b"console.log('gz')"))
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


@pytest.fixture
async def url(bundle: Path) -> AsyncIterator[str]:
    async for base in _serve(bundle):
        yield base


async def get(
    url: str, *, redirects: bool = True, gzipped: bool = False
) -> tuple[int, dict[str, str], str]:
    # Sent as written: the client would otherwise resolve ``..`` before the server sees it.
    accept = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True), allow_redirects=redirects, headers=accept) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def test_index_is_revalidated_and_has_a_csp_without_any_other_origin(url: str) -> None:
    status, headers, body = await get(url + "/ui/")
    assert (status, body) == (200, "<!doctype html><title>app</title>")
    assert headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "http" not in headers["Content-Security-Policy"]


async def test_hashed_assets_are_cached_for_a_year(url: str) -> None:
    status, headers, body = await get(url + "/ui/assets/index-abc123.js")
    assert (status, body) == (200, "console.log('app')")
    assert headers["Cache-Control"] == IMMUTABLE


async def test_a_browser_that_accepts_gzip_gets_the_precompressed_asset(url: str) -> None:
    status, headers, body = await get(url + "/ui/assets/index-abc123.js", gzipped=True)
    assert (status, body) == (200, "console.log('gz')")
    assert (headers["Content-Encoding"], headers["Cache-Control"]) == ("gzip", IMMUTABLE)
    assert "Accept-Encoding" in headers["Vary"]
    assert headers["Content-Type"].endswith("/javascript")


async def test_other_files_of_the_bundle_are_revalidated(url: str) -> None:
    status, headers, _ = await get(url + "/ui/favicon.svg")
    assert (status, headers["Cache-Control"]) == (200, "no-cache")


async def test_an_app_route_answers_the_index(url: str) -> None:
    status, _, body = await get(url + "/ui/flows/company.team/greet/editor")
    assert (status, body) == (200, "<!doctype html><title>app</title>")


async def test_a_missing_asset_is_a_404_not_the_index(url: str) -> None:
    status, _, body = await get(url + "/ui/assets/index-old999.js")
    assert (status, body) == (404, "not found")


async def test_no_file_outside_the_bundle_is_served(url: str) -> None:
    for path in (
        "/ui/%2e%2e/secret.txt",
        "/ui/..%2fsecret.txt",
        "/ui/assets/%2e%2e/%2e%2e/secret.txt",
    ):
        _, _, body = await get(url + path)
        assert "not for the web" not in body


@pytest.mark.parametrize("path", ["/ui", "/"])
async def test_ui_and_root_redirect_to_the_app(url: str, path: str) -> None:
    status, headers, _ = await get(url + path, redirects=False)
    assert (status, headers["Location"]) == (302, "/ui/")


async def test_without_a_bundle_ui_says_how_to_build_it(tmp_path: Path) -> None:
    async for base in _serve(tmp_path / "absent"):
        status, _, body = await get(base + "/ui/flows")
        assert status == 503
        assert "make ui" in body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    from live_server import EXAMPLES, start_server

    server = start_server(tmp_path_factory.mktemp("ui") / "home", "--deploy", str(EXAMPLES))
    try:
        yield server  # type: ignore[misc]
    finally:
        server.stop()


async def test_flow_schema_lists_every_task_type(live: LiveServer) -> None:
    schema = await call(live, "GET", "/plugins/schemas/flow")
    types = {
        name
        for branch in schema["$defs"].values()
        if isinstance(branch, dict) and "type" in branch.get("properties", {})
        for name in branch["properties"]["type"].get("enum", [])
    }
    assert {"plait.core.Log", "io.kestra.plugin.core.flow.Pause"} <= types


async def test_flow_schema_needs_a_token(live: LiveServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(live.api + "/plugins/schemas/flow") as response,
    ):
        assert response.status == 401


def test_the_server_says_where_the_ui_is(live: LiveServer) -> None:
    assert f"web UI: {live.url}/ui\n" in live.log()


async def test_the_live_server_serves_the_ui_without_a_token(live: LiveServer) -> None:
    status, headers, body = await get(live.url + "/ui/executions")
    assert status in (200, 503)
    assert "Content-Security-Policy" in headers
    assert "<html" in body
