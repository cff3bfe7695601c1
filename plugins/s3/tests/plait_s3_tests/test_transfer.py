"""Upload and Download: streamed, multipart for large files, metadata kept, memory flat."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from typing import Any

from plait_s3 import Download, Upload
from plait_sdk.testing import HarnessContext

from .conftest import read
from .s3testplugin import expected_digest, pseudo_random

MiB = 1 << 20


async def digest_of(ctx: HarnessContext, uri: str) -> str:
    digest = hashlib.sha256()
    async for chunk in ctx.storage.open(uri):
        digest.update(chunk)
    return digest.hexdigest()


async def test_large_object_round_trip_is_multipart_with_flat_memory(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    size, part = 40 * MiB + 12345, 5 * MiB
    source = await ctx.storage.put("big.bin", pseudo_random(size, seed=40))
    upload = Upload.model_validate(
        {**conn, "from": source, "bucket": bucket, "key": "big/big.bin", "partSize": part}
    )
    download = Download.model_validate({**conn, "bucket": bucket, "key": "big/big.bin"})
    await upload.run(ctx)  # warm the pooled client up: its one-off setup is not per byte
    await s3.delete_object(Bucket=bucket, Key="big/big.bin")

    tracemalloc.start()
    try:
        sent = await upload.run(ctx)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = await download.run(ctx)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sent.e_tag is not None
    assert sent.e_tag.strip('"').endswith("-9")
    assert (await s3.head_object(Bucket=bucket, Key="big/big.bin"))["ContentLength"] == size
    assert got.content_length == size
    assert await ctx.storage.size(got.uri) == size
    assert await digest_of(ctx, got.uri) == expected_digest(size, seed=40)
    # Never the whole file (40 MiB) in memory: about one part going up, a chunk coming down.
    assert upload_peak < 3 * part, f"upload peak {upload_peak / MiB:.1f} MiB"
    assert download_peak < 6 * MiB, f"download peak {download_peak / MiB:.1f} MiB"
    assert ("file.size", size) in [(m.name, m.value) for m in ctx.metrics]


async def test_multipart_upload_from_odd_sized_chunks(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    # A storage whose chunks are not whole parts goes through the part buffer.
    source = await ctx.storage.put("odd.bin", pseudo_random(11 * MiB + 7, seed=3))

    class OddChunks:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def open(self, uri: str, *, chunk_size: int = MiB) -> Any:
            return self.inner.open(uri, chunk_size=777_777)

    ctx._storage = OddChunks(ctx.storage)  # type: ignore[assignment]
    task = Upload.model_validate(
        {**conn, "from": source, "bucket": bucket, "key": "odd.bin", "partSize": 5 * MiB}
    )
    sent = await task.run(ctx)
    assert sent.e_tag is not None
    assert sent.e_tag.strip('"').endswith("-3")
    data = await read(s3, bucket, "odd.bin")
    assert hashlib.sha256(data).hexdigest() == expected_digest(11 * MiB + 7, seed=3)


async def test_small_upload_keeps_headers_and_metadata(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    uri = await ctx.storage.put("report.csv", b"a,b\n1,2\n")
    task = Upload.model_validate(
        {
            **conn,
            "from": uri,
            "bucket": bucket,
            "key": "reports/r.csv",
            "contentType": "text/csv",
            "metadata": {"origin": "plait"},
            "cacheControl": "no-cache",
            "tagging": {"team": "data"},
        }
    )
    sent = await task.run(ctx)
    assert sent.bucket == bucket
    assert sent.key == "reports/r.csv"
    assert sent.keys == ["reports/r.csv"]
    head = await s3.head_object(Bucket=bucket, Key="reports/r.csv")
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"] == {"origin": "plait"}
    assert head["CacheControl"] == "no-cache"
    tags = await s3.get_object_tagging(Bucket=bucket, Key="reports/r.csv")
    assert tags["TagSet"] == [{"Key": "team", "Value": "data"}]

    got = await Download.model_validate({**conn, "bucket": bucket, "key": "reports/r.csv"}).run(ctx)
    assert await ctx.storage.read_bytes(got.uri) == b"a,b\n1,2\n"
    assert got.uri.endswith("/r.csv")
    assert (got.content_type, got.metadata, got.content_length) == (
        "text/csv",
        {"origin": "plait"},
        8,
    )
    assert got.e_tag == sent.e_tag
    assert got.dump()["eTag"] == sent.e_tag  # Kestra's output names


async def test_upload_several_files_to_a_folder(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    first = await ctx.storage.put("one.txt", b"1")
    second = await ctx.storage.put("two.txt", b"22")
    empty = await ctx.storage.put("empty.txt", b"")
    # A JSON array rendered as text (Kestra's third form of `from`).
    task = Upload.model_validate(
        {**conn, "from": json.dumps([first, second, empty]), "bucket": bucket, "key": "dir/"}
    )
    sent = await task.run(ctx)
    assert sent.keys == ["dir/one.txt", "dir/two.txt", "dir/empty.txt"]
    assert await read(s3, bucket, "dir/two.txt") == b"22"
    assert await read(s3, bucket, "dir/empty.txt") == b""


async def test_download_of_awkward_key_gets_a_safe_file_name(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    await s3.put_object(Bucket=bucket, Key="in/été 2024 (final)?.csv", Body=b"x")
    got = await Download.model_validate(
        {**conn, "bucket": bucket, "key": "in/été 2024 (final)?.csv"}
    ).run(ctx)
    assert got.uri.rsplit("/", 1)[-1] == "_t__2024__final__.csv"
    assert await ctx.storage.read_bytes(got.uri) == b"x"
