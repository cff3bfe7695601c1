"""Clear failures for a missing bucket or object and for bad credentials, never showing them."""

from __future__ import annotations

from typing import Any

import pytest
from plait_s3 import Download, List, Upload
from plait_s3._client import POOL
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

BAD_KEY = "AKIAPLAITBADKEY00001"
BAD_SECRET = "plait-bad-secret-never-shown-0001"


async def test_missing_bucket(ctx: HarnessContext, conn: dict[str, Any]) -> None:
    with pytest.raises(TaskFailure) as failure:
        await Download.model_validate({**conn, "bucket": "no-such-bucket-x", "key": "a"}).run(ctx)
    assert str(failure.value) == (
        "download of s3://no-such-bucket-x/a: bucket 'no-such-bucket-x' does not exist "
        "(NoSuchBucket)"
    )
    uri = await ctx.storage.put("f.txt", b"x" * 10)
    upload = Upload.model_validate({**conn, "from": uri, "bucket": "no-such-bucket-x", "key": "k"})
    with pytest.raises(TaskFailure, match=r"bucket 'no-such-bucket-x' does not exist"):
        await upload.run(ctx)
    listing = List.model_validate({**conn, "bucket": "no-such-bucket-x"})
    with pytest.raises(TaskFailure, match=r"^list of s3://no-such-bucket-x/: bucket .* does not"):
        await listing.run(ctx)


async def test_missing_object(ctx: HarnessContext, conn: dict[str, Any], bucket: str) -> None:
    task = Download.model_validate({**conn, "bucket": bucket, "key": "nope/missing.csv"})
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    assert str(failure.value) == (
        f"download of s3://{bucket}/nope/missing.csv: "
        f"object s3://{bucket}/nope/missing.csv does not exist (NoSuchKey)"
    )


async def test_failed_multipart_upload_is_aborted(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    uri = await ctx.storage.put("big.bin", b"z" * (11 << 20))

    class Broken:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def open(self, uri: str, *, chunk_size: int = 1 << 20) -> Any:
            async for chunk in self.inner.open(uri, chunk_size=chunk_size):
                yield chunk
                raise OSError("disk went away")

    ctx._storage = Broken(ctx.storage)  # type: ignore[assignment]
    task = Upload.model_validate(
        {**conn, "from": uri, "bucket": bucket, "key": "k", "partSize": 5 << 20}
    )
    with pytest.raises(OSError, match="disk went away"):
        await task.run(ctx)
    uploads = await s3.list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []
    assert (await s3.list_objects_v2(Bucket=bucket))["KeyCount"] == 0


@pytest.mark.usefixtures("iam_auth")
async def test_bad_credentials_fail_clearly_and_are_never_shown(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str
) -> None:
    task = List.model_validate(
        {**conn, "bucket": bucket, "accessKeyId": BAD_KEY, "secretKeyId": BAD_SECRET}
    )
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    message = str(failure.value)
    assert message == (
        f"list of s3://{bucket}/: the access key was rejected (InvalidAccessKeyId); "
        "check accessKeyId"
    )
    assert {BAD_KEY, BAD_SECRET} <= ctx.masker.values
    for shown in (message, ctx.log_text, repr(task)):
        assert BAD_KEY not in shown
        assert BAD_SECRET not in shown
    # Logs are masked by the harness as in a run; the plugin must not even try to log them.
    assert "******" not in ctx.log_text
    assert failure.value.__cause__ is None
    assert failure.value.__suppress_context__


async def test_partial_credentials_are_refused(ctx: HarnessContext, conn: dict[str, Any]) -> None:
    task = List.model_validate({**conn, "bucket": "b-b-b", "secretKeyId": BAD_SECRET})
    with pytest.raises(TaskFailure, match="accessKeyId and secretKeyId must be set together"):
        await task.run(ctx)
    assert BAD_SECRET in ctx.masker.values
    assert len(POOL) == 0


async def test_bad_endpoint_is_a_clean_failure(ctx: HarnessContext) -> None:
    task = List.model_validate({"bucket": "b-b-b", "endpointOverride": "not a url"})
    with pytest.raises(TaskFailure, match="invalid S3 connection settings"):
        await task.run(ctx)
    assert len(POOL) == 0
