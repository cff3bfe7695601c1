"""List (pagination, regexp, filters), Delete, DeleteList, Copy and CreateBucket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from plait_s3 import Copy, CreateBucket, Delete, DeleteList, List, _ops
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from .conftest import MotoServer, keys_of, new_bucket_name, read

MiB = 1 << 20


async def put_many(s3: Any, bucket: str, keys: list[str]) -> None:
    slots = asyncio.Semaphore(32)

    async def put(key: str) -> None:
        async with slots:
            await s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    await asyncio.gather(*(put(k) for k in keys))


async def test_list_and_delete_list_page_past_1000_keys(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any, moto: MotoServer
) -> None:
    keys = [f"data/{i:05d}.txt" for i in range(1050)] + ["data/sub/", "other/x.txt"]
    moto.seed(bucket, keys)

    def listing(**props: Any) -> List:
        return List.model_validate({**conn, "bucket": bucket, **props})

    everything = await listing(prefix="data/", maxKeys=5000).run(ctx)
    assert [o.key for o in everything.objects] == sorted(keys[:-1])  # two pages of S3's 1,000
    assert everything.objects[0].size == len("data/00000.txt")
    assert everything.objects[0].etag
    assert everything.objects[0].last_modified

    capped = await listing(prefix="data/", maxKeys=1020, filter="FILES").run(ctx)
    assert len(capped.objects) == 1020
    assert "stopped at maxKeys=1020" in ctx.log_text

    matching = await listing(prefix="data/", regexp=r"data/00\d\d7\.txt", maxKeys=5000).run(ctx)
    assert [o.key for o in matching.objects] == [f"data/{i:05d}.txt" for i in range(7, 1000, 10)]
    # The regexp must match the whole key (Kestra's semantics), not a part of it.
    assert (await listing(prefix="data/0099", regexp=r"0\d\d7").run(ctx)).objects == []

    dirs = await listing(delimiter="/", filter="DIRECTORY").run(ctx)
    assert [o.key for o in dirs.objects] == ["data/", "other/"]
    default = await listing(prefix="data/").run(ctx)  # Kestra's default maxKeys: 1,000
    assert len(default.objects) == 1000
    assert ("s3.objects.count", 1000) in [(m.name, m.value) for m in ctx.metrics]

    deleted = await DeleteList.model_validate(
        {**conn, "bucket": bucket, "prefix": "data/", "concurrent": 2}
    ).run(ctx)
    assert (deleted.count, deleted.size) == (1051, sum(len(k) for k in keys[:-1]))
    assert await keys_of(s3, bucket) == ["other/x.txt"]
    assert ("s3.objects.deleted.count", 1051) in [(m.name, m.value) for m in ctx.metrics]


async def test_delete_list_with_regexp_limit_and_error_on_empty(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    await put_many(s3, bucket, ["tmp/a.tmp", "tmp/b.tmp", "tmp/c.tmp", "tmp/keep.csv"])
    task = DeleteList.model_validate(
        {**conn, "bucket": bucket, "prefix": "tmp/", "regexp": r".*\.tmp", "maxKeys": 2}
    )
    assert (await task.run(ctx)).count == 2
    assert (await task.run(ctx)).count == 1
    assert await keys_of(s3, bucket) == ["tmp/keep.csv"]
    empty = task.model_copy(update={"error_on_empty": True})
    with pytest.raises(TaskFailure, match=r"no object to delete in s3://.*/tmp/ matching"):
        await empty.run(ctx)
    with pytest.raises(ValueError, match="invalid regular expression"):
        DeleteList.model_validate({**conn, "bucket": bucket, "regexp": "(unclosed"})


async def test_delete(ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any) -> None:
    await s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"x")
    task = Delete.model_validate({**conn, "bucket": bucket, "key": "a/b.txt"})
    await task.run(ctx)
    assert await keys_of(s3, bucket) == []
    await task.run(ctx)  # deleting a missing key succeeds, as in S3 and Kestra


async def test_copy_between_buckets_and_move(
    ctx: HarnessContext, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    other = new_bucket_name()
    await s3.create_bucket(Bucket=other)
    await s3.put_object(
        Bucket=bucket, Key="in/a.csv", Body=b"a,b", ContentType="text/csv", Metadata={"k": "v"}
    )
    copied = await Copy.model_validate(
        {**conn, "from": {"bucket": bucket, "key": "in/a.csv"}, "to": {"bucket": other}}
    ).run(ctx)
    assert (copied.bucket, copied.key) == (other, "in/a.csv")
    assert copied.e_tag
    head = await s3.head_object(Bucket=other, Key="in/a.csv")
    assert (head["ContentType"], head["Metadata"]) == ("text/csv", {"k": "v"})

    moved = await Copy.model_validate(
        {
            **conn,
            "from": {"bucket": bucket, "key": "in/a.csv"},
            "to": {"key": "archive/a.csv", "serverSideEncryption": "AES256"},
            "delete": True,
        }
    ).run(ctx)
    assert (moved.bucket, moved.key) == (bucket, "archive/a.csv")
    assert await keys_of(s3, bucket) == ["archive/a.csv"]
    assert await read(s3, bucket, "archive/a.csv") == b"a,b"

    with pytest.raises(TaskFailure, match=r"copy of s3://.*/in/a\.csv: object .* does not exist"):
        await Copy.model_validate({**conn, "from": {"bucket": bucket, "key": "in/a.csv"}}).run(ctx)


async def test_copy_of_a_large_object_goes_part_by_part(
    ctx: HarnessContext,
    conn: dict[str, Any],
    bucket: str,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # S3 copies up to 5 GiB in one request; shrink the limits to exercise ranged part copies.
    monkeypatch.setattr(_ops, "MULTIPART_COPY_THRESHOLD", 6 * MiB)
    monkeypatch.setattr(_ops, "COPY_PART_SIZE", 5 * MiB)
    body = bytes(range(256)) * (12 * MiB // 256) + b"tail"
    await s3.put_object(Bucket=bucket, Key="big", Body=body, ContentType="application/x-test")
    copied = await Copy.model_validate(
        {**conn, "from": {"bucket": bucket, "key": "big"}, "to": {"key": "copy"}}
    ).run(ctx)
    assert copied.e_tag is not None
    assert copied.e_tag.strip('"').endswith("-3")
    assert await read(s3, bucket, "copy") == body
    head = await s3.head_object(Bucket=bucket, Key="copy")
    assert head["ContentType"] == "application/x-test"


async def test_create_bucket(ctx: HarnessContext, conn: dict[str, Any], s3: Any) -> None:
    name = new_bucket_name()
    made = await CreateBucket.model_validate({**conn, "bucket": name}).run(ctx)
    assert (made.bucket, made.region) == (name, "us-east-1")
    await s3.head_bucket(Bucket=name)

    europe = new_bucket_name()
    made = await CreateBucket.model_validate(
        {**conn, "bucket": europe, "region": "eu-west-1", "objectLockEnabledForBucket": True}
    ).run(ctx)
    assert made.region == "eu-west-1"
    location = await s3.get_bucket_location(Bucket=europe)
    assert location["LocationConstraint"] == "eu-west-1"
    lock = await s3.get_object_lock_configuration(Bucket=europe)
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"

    with pytest.raises(TaskFailure, match="already exists"):
        await CreateBucket.model_validate({**conn, "bucket": europe, "region": "eu-west-1"}).run(
            ctx
        )
