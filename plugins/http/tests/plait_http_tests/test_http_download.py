"""plait.http.Download: streamed to internal storage, with flat memory."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from plait_http import Download, DownloadOutput
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from .conftest import Server
from .server import CHUNK


async def download(ctx: HarnessContext, **properties: Any) -> DownloadOutput:
    return await Download.model_validate(properties).run(ctx)


async def test_a_50_mb_download_streams_with_flat_memory(
    server: Server, ctx: HarnessContext
) -> None:
    size = 50 * 1024 * 1024
    await download(ctx, uri=server.url("/big?size=1024"))  # warm up: imports, connection setup
    gc.collect()
    tracemalloc.start()
    try:
        out = await download(ctx, uri=server.url(f"/big?size={size}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.code == 200
    assert out.length == size
    assert out.content_type == "application/octet-stream"
    assert out.uri.endswith("/big")
    assert await ctx.storage.size(out.uri) == size
    # the whole body never sits in memory: the peak stays a small fraction of the file
    assert peak < 6 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
    digest = hashlib.sha256()
    async for chunk in ctx.storage.open(out.uri):
        digest.update(chunk)
    expected = hashlib.sha256()
    for _ in range(size // len(CHUNK)):
        expected.update(CHUNK)
    assert digest.hexdigest() == expected.hexdigest()


async def test_the_file_is_named_after_content_disposition(
    server: Server, ctx: HarnessContext
) -> None:
    out = await download(ctx, uri=server.url("/named"))
    assert out.uri.endswith("/report_2024.csv")
    assert await ctx.storage.read_bytes(out.uri) == b"a,b\n1,2\n"
    assert out.headers["content-disposition"] == ['attachment; filename="report 2024.csv"']
    assert out.content_type is not None
    assert out.content_type.startswith("text/csv")


async def test_an_empty_response_fails_unless_allowed(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"empty response from .*/empty"):
        await download(ctx, uri=server.url("/empty"))
    out = await download(ctx, uri=server.url("/empty"), failOnEmptyResponse=False)
    assert out.length == 0
    assert any("is empty" in message for _, message in ctx.logs)


async def test_an_error_status_fails_with_an_excerpt(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"HTTP 404 Not Found from GET .*: error body for 404"):
        await download(ctx, uri=server.url("/status/404"))


async def test_download_follows_redirects_and_honours_max_content_length(
    server: Server, ctx: HarnessContext
) -> None:
    out = await download(ctx, uri=server.url("/chain/2"))
    assert out.code == 200
    assert out.length > 0
    with pytest.raises(TaskFailure, match=r"larger than options.maxContentLength"):
        await download(
            ctx, uri=server.url("/big?size=300000"), options={"maxContentLength": 100_000}
        )


async def test_cancellation_stops_a_download(server: Server, ctx: HarnessContext) -> None:
    ctx.is_cancelled = True
    with pytest.raises(TaskFailure, match="cancelled while downloading"):
        await download(ctx, uri=server.url("/big?size=1000000"))


async def test_a_download_that_stalls_times_out_and_stores_nothing(
    server: Server, ctx: HarnessContext, tmp_path: Path
) -> None:
    with pytest.raises(TaskFailure, match=r"timed out waiting for data from .*/stall"):
        await download(ctx, uri=server.url("/stall"), options={"readTimeout": "PT0.3S"})
    leftovers = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert leftovers == []
