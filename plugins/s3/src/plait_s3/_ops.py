"""S3 operations on a client: paginated listing, streaming transfers, copies.

Transfers never hold a whole object in memory: uploads buffer at most one part, downloads pass
chunks straight on to internal storage.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from plait_sdk import TaskFailure

from plait_s3._client import S3Client
from plait_s3._models import Filter, S3Object, object_of

log = logging.getLogger(__name__)

T = TypeVar("T")

MiB = 1 << 20
GiB = 1 << 30
#: S3's bounds on a multipart upload's parts.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
#: Chunk size when streaming a download into internal storage.
DOWNLOAD_CHUNK = 1 * MiB
#: Objects above this size are copied part by part (CopyObject's own limit is 5 GiB).
MULTIPART_COPY_THRESHOLD = 5 * GiB
COPY_PART_SIZE = 512 * MiB
#: Server-side copies of one object running at once.
COPY_CONCURRENCY = 8

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=,~-]")


def compile_regexp(value: str | None) -> re.Pattern[str] | None:
    """The compiled pattern, or a clean error naming the bad expression."""
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as error:
        raise ValueError(f"invalid regular expression {value!r}: {error}") from None


def keep(obj: S3Object, regexp: re.Pattern[str] | None, filter: Filter) -> bool:
    """Kestra's filter: the regexp must match the whole key; directories end with ``/``."""
    if regexp is not None and regexp.fullmatch(obj.key) is None:
        return False
    is_dir = obj.key.endswith("/")
    return filter is Filter.BOTH or (filter is Filter.DIRECTORY) == is_dir


async def iter_objects(
    client: S3Client,
    *,
    bucket: str,
    prefix: str | None = None,
    delimiter: str | None = None,
    start_after: str | None = None,
    regexp: re.Pattern[str] | None = None,
    filter: Filter = Filter.BOTH,
    request_payer: str | None = None,
    expected_bucket_owner: str | None = None,
    skip: Callable[[str], bool] | None = None,
) -> AsyncIterator[S3Object]:
    """Every matching object in key order, following continuation tokens page after page.

    With a ``delimiter``, common prefixes are yielded as directory entries (key ending in
    ``/``, size 0) unless ``filter`` is ``FILES``.
    """
    params: dict[str, Any] = {"Bucket": bucket}
    optional = {
        "Prefix": prefix,
        "Delimiter": delimiter,
        "StartAfter": start_after,
        "RequestPayer": request_payer,
        "ExpectedBucketOwner": expected_bucket_owner,
    }
    params.update({k: v for k, v in optional.items() if v})
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(**params):
        entries = [object_of(entry) for entry in page.get("Contents", ())]
        if filter is not Filter.FILES:
            entries += [S3Object(key=p["Prefix"]) for p in page.get("CommonPrefixes", ())]
            entries.sort(key=lambda o: o.key)
        for obj in entries:
            if skip is not None and skip(obj.key):
                continue
            if keep(obj, regexp, filter):
                yield obj


async def collect(
    objects: AsyncIterator[S3Object], limit: int | None
) -> tuple[list[S3Object], bool]:
    """Up to ``limit`` objects and whether more were left out (stops listing at the limit)."""
    found: list[S3Object] = []
    try:
        async for obj in objects:
            if limit is not None and len(found) >= limit:
                return found, True
            found.append(obj)
    finally:
        await aclose(objects)
    return found, False


async def aclose(iterator: AsyncIterable[Any]) -> None:
    """Close an async generator left part-way (frees its file or connection now, not at GC)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


# -- upload --------------------------------------------------------------------------------------


async def put_stream(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    chunks: AsyncIterable[bytes],
    size: int,
    part_size: int,
    params: dict[str, Any],
    part_params: dict[str, Any],
) -> dict[str, Any]:
    """Upload a stream of ``size`` bytes: one PutObject up to ``part_size``, else multipart.

    ``params`` go to PutObject / CreateMultipartUpload (content type, metadata...),
    ``part_params`` to every call of a multipart upload (request payer, expected owner).
    Returns S3's response (``ETag``, ``VersionId``).
    """
    if size <= part_size:
        body = b"".join([chunk async for chunk in chunks])
        response: dict[str, Any] = await client.put_object(
            Bucket=bucket, Key=key, Body=body, **params, **part_params
        )
        return response
    # A part number is at most 10,000: grow the parts of a huge file rather than fail on it.
    while size > part_size * MAX_PARTS and part_size < MAX_PART_SIZE:
        part_size = min(part_size * 2, MAX_PART_SIZE)
    created = await client.create_multipart_upload(Bucket=bucket, Key=key, **params, **part_params)
    upload_id = created["UploadId"]
    parts: list[dict[str, Any]] = []

    async def send(data: bytes | bytearray) -> None:
        number = len(parts) + 1
        sent = await client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            **part_params,
        )
        parts.append({"ETag": sent["ETag"], "PartNumber": number})

    try:
        buffer = bytearray()
        async for chunk in chunks:
            if not buffer and len(chunk) == part_size:
                await send(chunk)  # the source already reads whole parts: no copy at all
                del chunk
                continue
            buffer += chunk
            del chunk
            while len(buffer) >= part_size:
                with memoryview(buffer) as view:
                    part = bytes(view[:part_size])
                del buffer[:part_size]
                await send(part)
                del part
        if buffer or not parts:
            await send(bytes(buffer))
        del buffer
        completed: dict[str, Any] = await client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **part_params,
        )
    except BaseException:
        await _abort(client, bucket, key, upload_id, part_params)
        raise
    return completed


async def _abort(
    client: S3Client, bucket: str, key: str, upload_id: str, part_params: dict[str, Any]
) -> None:
    """Abort a multipart upload so its parts stop costing storage; never raises."""
    try:
        await asyncio.shield(
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, **part_params)
        )
    except BaseException as error:  # the original failure matters more than this one
        log.warning("could not abort multipart upload of s3://%s/%s: %s", bucket, key, error)


# -- download ------------------------------------------------------------------------------------


async def body_chunks(body: Any, chunk_size: int = DOWNLOAD_CHUNK) -> AsyncIterator[bytes]:
    """The chunks of a GetObject body; the body is closed however the iteration ends.

    aiobotocore checks the received length against ``Content-Length`` at the end of the stream
    and raises when the connection was cut short.
    """
    try:
        while chunk := await body.read(chunk_size):
            yield chunk
    finally:
        body.close()


def storage_name(key: str) -> str:
    """A file name internal storage accepts, from the last segment of an S3 key."""
    base = key.rstrip("/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", base)
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190 - len(ext)] + dot + ext) if dot and len(ext) < 10 else name[:200]
    return name if name not in ("", ".", "..") else "object"


# -- copy ----------------------------------------------------------------------------------------

#: Head fields carried over to the destination of a multipart copy (CopyObject keeps them).
_KEPT_ON_COPY = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Metadata",
)


async def copy_object(
    client: S3Client,
    *,
    source: dict[str, str],
    bucket: str,
    key: str,
    size: int,
    if_match: str | None = None,
    params: dict[str, Any] | None = None,
    head: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Server-side copy of ``source`` (``Bucket``, ``Key``, optional ``VersionId``).

    Objects above :data:`MULTIPART_COPY_THRESHOLD` are copied in ranges (UploadPartCopy).
    ``if_match`` copies only if the source still has that ETag. Returns ``ETag`` and
    ``VersionId`` of the new object.
    """
    params = dict(params or {})
    condition = {"CopySourceIfMatch": if_match} if if_match else {}
    if size <= MULTIPART_COPY_THRESHOLD:
        copied = await client.copy_object(
            Bucket=bucket, Key=key, CopySource=source, **condition, **params
        )
        return {
            "ETag": copied.get("CopyObjectResult", {}).get("ETag"),
            "VersionId": copied.get("VersionId"),
        }
    if head is not None:
        for name in _KEPT_ON_COPY:
            if head.get(name) and name not in params:
                params[name] = head[name]
    created = await client.create_multipart_upload(Bucket=bucket, Key=key, **params)
    upload_id = created["UploadId"]
    ranges = [
        (start, min(start + COPY_PART_SIZE, size) - 1) for start in range(0, size, COPY_PART_SIZE)
    ]
    slots = asyncio.Semaphore(COPY_CONCURRENCY)

    async def part(number: int, first: int, last: int) -> dict[str, Any]:
        async with slots:
            copied = await client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={first}-{last}",
                **condition,
            )
        return {"ETag": copied["CopyPartResult"]["ETag"], "PartNumber": number}

    try:
        parts = await gather_all(
            [part(n, first, last) for n, (first, last) in enumerate(ranges, start=1)]
        )
        completed = await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": list(parts)}
        )
    except BaseException:
        await _abort(client, bucket, key, upload_id, {})
        raise
    return {"ETag": completed.get("ETag"), "VersionId": completed.get("VersionId")}


async def gather_all(coros: Sequence[Awaitable[T]]) -> list[T]:
    """Run ``coros`` concurrently; on the first failure cancel the rest and raise that failure.

    (``asyncio.gather`` would leave the others running; a ``TaskGroup`` would wrap the error in
    an ``ExceptionGroup`` that the error translation could not see through.)
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def require(condition: bool, message: str) -> None:
    """Fail the task run with ``message`` unless ``condition`` holds."""
    if not condition:
        raise TaskFailure(message)
