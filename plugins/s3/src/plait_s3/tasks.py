"""The S3 tasks: Upload, Download, List, Delete, DeleteList, Copy, CreateBucket.

Property and output names are those of Kestra's ``io.kestra.plugin.aws.s3`` tasks, which are
registered as aliases, so Kestra flows run unchanged.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any, ClassVar

from plait_sdk import Example, Model, Output, RunContext, Task, TaskFailure
from pydantic import Field, field_validator

from plait_s3._client import s3_errors
from plait_s3._models import Filter, S3Connection, S3Object
from plait_s3._ops import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    MiB,
    aclose,
    body_chunks,
    collect,
    compile_regexp,
    copy_object,
    gather_all,
    iter_objects,
    put_stream,
    storage_name,
)

KESTRA = "io.kestra.plugin.aws.s3."
_CONNECTION = (
    'region: "eu-central-1"\n'
    "accessKeyId: \"{{ secret('AWS_ACCESS_KEY_ID') }}\"\n"
    "secretKeyId: \"{{ secret('AWS_SECRET_KEY_ID') }}\"\n"
)
_SSE = {"NONE": None, "AES256": "AES256", "AWS_KMS": "aws:kms", "AWS_KMS_DSSE": "aws:kms:dsse"}


def _sse(value: str | None) -> str | None:
    """S3's spelling of a server-side encryption (Kestra also accepts the Java enum names)."""
    if value is None:
        return None
    return _SSE.get(value.upper(), value) if value.upper() in _SSE else value


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line + "\n" for line in text.splitlines())


def _set(params: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``params`` plus the values that are set (S3 refuses ``None`` parameters)."""
    params.update({k: v for k, v in values.items() if v is not None})
    return params


class S3Task(Task, S3Connection):
    """Base of the S3 tasks: the connection properties (not a task type itself)."""


class BucketTask(S3Task):
    """Base of the tasks that work on one bucket's objects."""

    bucket: str
    """The bucket."""
    request_payer: str | None = None
    """Set to ``requester`` to access a Requester Pays bucket at your own cost."""


class _Listing(BucketTask):
    """Listing properties shared by List and DeleteList."""

    prefix: str | None = None
    """Only keys starting with this prefix."""
    delimiter: str | None = None
    """Group keys on this character (``/``): only the first level under ``prefix`` is listed,
    deeper levels come back as directory entries (keys ending with the delimiter)."""
    marker: str | None = None
    """Start listing after this key."""
    regexp: str | None = None
    """Keep only keys that this regular expression matches entirely, e.g. ``.*\\.csv``."""
    filter: Filter = Filter.BOTH
    """``FILES``, ``DIRECTORY`` (keys ending with ``/``) or ``BOTH``."""
    expected_bucket_owner: str | None = None
    """Fail with 403 when the bucket belongs to another AWS account than this one."""

    @field_validator("regexp")
    @classmethod
    def _valid_regexp(cls, value: str | None) -> str | None:
        compile_regexp(value)
        return value

    def _objects(self, client: Any) -> Any:
        return iter_objects(
            client,
            bucket=self.bucket,
            prefix=self.prefix,
            delimiter=self.delimiter,
            start_after=self.marker,
            regexp=compile_regexp(self.regexp),
            filter=self.filter,
            request_payer=self.request_payer,
            expected_bucket_owner=self.expected_bucket_owner,
        )

    def _where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix or ''}" + (
            f" matching {self.regexp!r}" if self.regexp else ""
        )


# -- Upload --------------------------------------------------------------------------------------


class UploadOutput(Output):
    bucket: str
    """The bucket."""
    key: str | None = None
    """The object's key (with several files: the folder key they were uploaded under)."""
    e_tag: str | None = None
    """ETag of the object (of the last one with several files)."""
    version_id: str | None = None
    """Version of the object, in a versioned bucket."""
    keys: list[str] = Field(default_factory=list)
    """Every key written, in the order of ``from``."""


class Upload(BucketTask):
    """Upload one or more files from internal storage to S3.

    Files up to ``partSize`` go up in one request; larger ones as a multipart upload, read part by
    part from internal storage, so memory stays flat whatever the size (a failed multipart upload
    is aborted). With several files, ``key`` is a folder and each file keeps its name.
    """

    type_name: ClassVar[str] = "plait.s3.Upload"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "Upload",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Upload a FILE input",
            full=True,
            code=(
                "id: s3_upload\nnamespace: company.team\n"
                "inputs:\n  - id: file\n    type: FILE\n"
                "tasks:\n  - id: upload\n    type: plait.s3.Upload\n"
                '    from: "{{ inputs.file }}"\n    bucket: my-bucket\n    key: path/to/file.csv\n'
                + _indent(_CONNECTION, 4)
            ),
        ),
        Example(
            title="Upload two files produced earlier under a folder of a MinIO bucket",
            code=(
                "id: upload\ntype: plait.s3.Upload\n"
                'from:\n  - "{{ outputs.extract.uri }}"\n  - "{{ outputs.report.uri }}"\n'
                "bucket: exports\nkey: daily/2024-06-01\n"
                "endpointOverride: http://minio:9000\nforcePathStyle: true\n"
                "accessKeyId: \"{{ secret('MINIO_ACCESS_KEY') }}\"\n"
                "secretKeyId: \"{{ secret('MINIO_SECRET_KEY') }}\"\n"
            ),
        ),
    )

    from_: str | list[str] = Field(alias="from")
    """Internal storage URI(s) of the file(s): one URI, a list, or a JSON array as text."""
    key: str
    """The object's key; with several files, the folder key under which each keeps its name."""
    metadata: dict[str, str] | None = None
    """User metadata stored with the object(s)."""
    cache_control: str | None = None
    """``Cache-Control`` of the object(s)."""
    content_type: str | None = None
    """MIME type of the object(s), e.g. ``text/csv``."""
    content_encoding: str | None = None
    """``Content-Encoding`` of the object(s), e.g. ``gzip``."""
    content_disposition: str | None = None
    """``Content-Disposition`` of the object(s)."""
    content_language: str | None = None
    """Language of the content."""
    acl: str | None = None
    """Canned ACL, e.g. ``private`` or ``bucket-owner-full-control``."""
    storage_class: str | None = None
    """Storage class, e.g. ``STANDARD_IA`` (S3 Standard when unset)."""
    server_side_encryption: str | None = None
    """Server-side encryption: ``AES256``, ``aws:kms`` or ``aws:kms:dsse``."""
    tagging: dict[str, str] | None = None
    """Tags of the object(s)."""
    expected_bucket_owner: str | None = None
    """Fail with 403 when the bucket belongs to another AWS account than this one."""
    part_size: int = Field(default=8 * MiB, ge=MIN_PART_SIZE, le=MAX_PART_SIZE)
    """Bytes per part of a multipart upload (5 MiB to 5 GiB); larger files are sent in parts."""

    @field_validator("from_", mode="after")
    @classmethod
    def _uris(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            text = value.strip()
            if not (text.startswith("[") and text.endswith("]")):
                return text
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"'from' looks like a JSON array but is not: {error}") from None
            if not isinstance(parsed, list) or not all(isinstance(u, str) for u in parsed):
                raise ValueError("'from' must be a URI, a list of URIs or a JSON array of URIs")
            value = parsed
        if not value:
            raise ValueError("'from' has no file to upload")
        return value

    async def run(self, ctx: RunContext) -> UploadOutput:
        sources = [self.from_] if isinstance(self.from_, str) else list(self.from_)
        client, settings = await self.client(ctx)
        params = _set(
            {},
            Metadata=self.metadata,
            CacheControl=self.cache_control,
            ContentType=self.content_type,
            ContentEncoding=self.content_encoding,
            ContentDisposition=self.content_disposition,
            ContentLanguage=self.content_language,
            ACL=self.acl,
            StorageClass=self.storage_class,
            ServerSideEncryption=_sse(self.server_side_encryption),
            Tagging=urllib.parse.urlencode(self.tagging) if self.tagging else None,
        )
        part_params = _set(
            {}, RequestPayer=self.request_payer, ExpectedBucketOwner=self.expected_bucket_owner
        )
        output = UploadOutput(bucket=self.bucket, key=self.key)
        for uri in sources:
            key = self.key
            if len(sources) > 1:
                key = f"{self.key.rstrip('/')}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
            size = await ctx.storage.size(uri)
            target = f"s3://{self.bucket}/{key}"
            chunks = ctx.storage.open(uri, chunk_size=self.part_size)
            with s3_errors(
                f"upload to {target}", bucket=self.bucket, key=key, secrets=settings.secrets
            ):
                try:
                    sent = await put_stream(
                        client,
                        bucket=self.bucket,
                        key=key,
                        chunks=chunks,
                        size=size,
                        part_size=self.part_size,
                        params=params,
                        part_params=part_params,
                    )
                finally:
                    await aclose(chunks)
            ctx.log.info("uploaded %s (%d bytes) to %s", uri, size, target)
            ctx.metric("file.count", 1)
            ctx.metric("file.size", size)
            output.keys.append(key)
            output.e_tag = sent.get("ETag")
            output.version_id = sent.get("VersionId")
        return output


# -- Download ------------------------------------------------------------------------------------


class DownloadOutput(Output):
    uri: str
    """Internal storage URI of the downloaded file."""
    content_length: int
    """Size in bytes."""
    content_type: str | None = None
    """The object's MIME type."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """The object's user metadata."""
    e_tag: str | None = None
    """The object's ETag."""
    version_id: str | None = None
    """The object's version, in a versioned bucket."""


class Download(BucketTask):
    """Download an object from S3 into internal storage, streamed chunk by chunk."""

    type_name: ClassVar[str] = "plait.s3.Download"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "Download",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Download an object and log its size",
            full=True,
            code=(
                "id: s3_download\nnamespace: company.team\ntasks:\n"
                "  - id: download\n    type: plait.s3.Download\n"
                "    bucket: my-bucket\n    key: path/to/file.csv\n"
                + _indent(_CONNECTION, 4)
                + "  - id: log\n    type: plait.core.Log\n"
                '    message: "{{ outputs.download.uri }} ({{ outputs.download.contentLength }} '
                'bytes)"\n'
            ),
        ),
    )

    key: str
    """The object's key."""
    version_id: str | None = None
    """A specific version of the object (versioned buckets)."""
    expected_bucket_owner: str | None = None
    """Fail with 403 when the bucket belongs to another AWS account than this one."""

    async def run(self, ctx: RunContext) -> DownloadOutput:
        client, settings = await self.client(ctx)
        params = _set(
            {"Bucket": self.bucket, "Key": self.key},
            VersionId=self.version_id,
            RequestPayer=self.request_payer,
            ExpectedBucketOwner=self.expected_bucket_owner,
        )
        target = f"s3://{self.bucket}/{self.key}"
        with s3_errors(
            f"download of {target}", bucket=self.bucket, key=self.key, secrets=settings.secrets
        ):
            got = await client.get_object(**params)
            body = got["Body"]
            try:
                uri = await ctx.storage.put(storage_name(self.key), body_chunks(body))
            finally:
                body.close()  # also when storage failed before reading: free the connection
        size = int(got.get("ContentLength") or 0)
        ctx.log.info("downloaded %s (%d bytes) to %s", target, size, uri)
        ctx.metric("file.size", size)
        return DownloadOutput(
            uri=uri,
            content_length=size,
            content_type=got.get("ContentType"),
            metadata=dict(got.get("Metadata") or {}),
            e_tag=got.get("ETag"),
            version_id=got.get("VersionId"),
        )


# -- List ----------------------------------------------------------------------------------------


class ListOutput(Output):
    objects: list[S3Object] = Field(default_factory=list)
    """The matching objects in key order (at most ``maxKeys``)."""


class List(_Listing):
    """List the objects of a bucket, optionally under a prefix and matching a regexp.

    S3 returns at most 1,000 keys per request; the task follows the continuation tokens until
    ``maxKeys`` objects matched or the listing ends (a warning says when it was cut short).
    """

    type_name: ClassVar[str] = "plait.s3.List"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "List",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="List the CSV files of a folder",
            code=(
                "id: list\ntype: plait.s3.List\nbucket: my-bucket\nprefix: sub-dir/\n"
                'regexp: ".*\\\\.csv"\nfilter: FILES\n' + _CONNECTION
            ),
        ),
        Example(
            title="Iterate over the keys found",
            code=(
                "id: each\ntype: plait.core.ForEach\n"
                "values: \"{{ outputs.list.objects | map(attribute='key') | list }}\"\n"
                "tasks:\n  - id: log\n    type: plait.core.Log\n"
                '    message: "{{ taskrun.value }}"\n'
            ),
        ),
    )

    max_keys: int = Field(default=1000, ge=1)
    """The most objects returned (the listing pages through S3 as far as needed)."""

    async def run(self, ctx: RunContext) -> ListOutput:
        client, settings = await self.client(ctx)
        with s3_errors(f"list of {self._where()}", bucket=self.bucket, secrets=settings.secrets):
            objects, truncated = await collect(self._objects(client), self.max_keys)
        if truncated:
            ctx.log.warning(
                "listing of %s stopped at maxKeys=%d; more objects match",
                self._where(),
                self.max_keys,
            )
        ctx.log.info("found %d object(s) in %s", len(objects), self._where())
        ctx.metric("s3.objects.count", len(objects))
        return ListOutput(objects=objects)


# -- Delete --------------------------------------------------------------------------------------


class DeleteOutput(Output):
    version_id: str | None = None
    """Version id of the delete marker created (versioned buckets)."""
    delete_marker: bool | None = None
    """Whether the version deleted was (or the one created is) a delete marker."""
    request_charged: str | None = None
    """``requester`` when the requester was charged (Requester Pays buckets)."""


class Delete(BucketTask):
    """Delete one object (deleting a key that does not exist succeeds, as in S3)."""

    type_name: ClassVar[str] = "plait.s3.Delete"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "Delete",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Delete an object",
            code="id: delete\ntype: plait.s3.Delete\nbucket: my-bucket\nkey: path/to/file\n"
            + _CONNECTION,
        ),
    )

    key: str
    """The object's key."""
    version_id: str | None = None
    """Delete this version of the object for good (versioned buckets)."""
    bypass_governance_retention: bool | None = None
    """Delete even under an Object Lock governance-mode retention (needs the permission)."""
    mfa: str | None = Field(default=None, repr=False)
    """MFA device serial and code, space-separated (MFA-delete buckets)."""
    expected_bucket_owner: str | None = None
    """Fail with 403 when the bucket belongs to another AWS account than this one."""

    async def run(self, ctx: RunContext) -> DeleteOutput:
        client, settings = await self.client(ctx)
        if self.mfa:
            ctx.mask(self.mfa)
        params = _set(
            {"Bucket": self.bucket, "Key": self.key},
            VersionId=self.version_id,
            BypassGovernanceRetention=self.bypass_governance_retention,
            MFA=self.mfa,
            RequestPayer=self.request_payer,
            ExpectedBucketOwner=self.expected_bucket_owner,
        )
        target = f"s3://{self.bucket}/{self.key}"
        secrets = (*settings.secrets, *([self.mfa] if self.mfa else []))
        with s3_errors(f"delete of {target}", bucket=self.bucket, key=self.key, secrets=secrets):
            deleted = await client.delete_object(**params)
        ctx.log.info("deleted %s", target)
        return DeleteOutput(
            version_id=deleted.get("VersionId"),
            delete_marker=deleted.get("DeleteMarker"),
            request_charged=deleted.get("RequestCharged"),
        )


# -- DeleteList ----------------------------------------------------------------------------------


class DeleteListOutput(Output):
    count: int = 0
    """Number of objects deleted."""
    size: int = 0
    """Total size in bytes of the objects deleted."""


class DeleteList(_Listing):
    """Delete every object under a prefix and/or matching a regexp.

    Objects are deleted 1,000 per request (DeleteObjects) while the listing pages on; a key S3
    refuses to delete fails the task, naming the first refusals.
    """

    type_name: ClassVar[str] = "plait.s3.DeleteList"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "DeleteList",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Delete the temporary files of a folder",
            code=(
                "id: cleanup\ntype: plait.s3.DeleteList\nbucket: my-bucket\nprefix: tmp/\n"
                'regexp: ".*\\\\.tmp"\nerrorOnEmpty: false\n' + _CONNECTION
            ),
        ),
    )

    max_keys: int | None = Field(default=None, ge=1)
    """Delete at most this many objects (all matching objects when unset)."""
    concurrent: int | None = Field(default=None, ge=2)
    """Send up to this many delete requests (of 1,000 keys each) at once."""
    error_on_empty: bool = False
    """Fail when no object matches."""

    async def run(self, ctx: RunContext) -> DeleteListOutput:
        client, settings = await self.client(ctx)
        slots = asyncio.Semaphore(self.concurrent or 1)
        pending: list[asyncio.Future[list[str]]] = []
        refused: list[str] = []
        output = DeleteListOutput()
        batch: list[S3Object] = []

        async def delete(objects: list[S3Object]) -> list[str]:
            async with slots:
                params = _set(
                    {
                        "Bucket": self.bucket,
                        "Delete": {"Objects": [{"Key": o.key} for o in objects], "Quiet": True},
                    },
                    RequestPayer=self.request_payer,
                    ExpectedBucketOwner=self.expected_bucket_owner,
                )
                answer = await client.delete_objects(**params)
            return [f"{e.get('Key')}: {e.get('Code')}" for e in answer.get("Errors", ())]

        def flush() -> None:
            nonlocal batch
            if batch:
                pending.append(asyncio.ensure_future(delete(batch)))
                batch = []

        with s3_errors(f"delete of {self._where()}", bucket=self.bucket, secrets=settings.secrets):
            objects = self._objects(client)
            try:
                async for obj in objects:
                    if self.max_keys is not None and output.count >= self.max_keys:
                        break
                    batch.append(obj)
                    output.count += 1
                    output.size += obj.size
                    if len(batch) == 1000:
                        flush()
                    if len(pending) > (self.concurrent or 1):  # bound the listing's lead
                        refused += await pending.pop(0)
                flush()
                for errors in await gather_all(list(pending)):
                    refused += errors
            except BaseException:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise
            finally:
                await aclose(objects)
        if refused:
            shown = "; ".join(refused[:5]) + (
                f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
            )
            raise TaskFailure(f"{len(refused)} object(s) of {self._where()} not deleted: {shown}")
        if output.count == 0 and self.error_on_empty:
            raise TaskFailure(f"no object to delete in {self._where()}")
        ctx.log.info(
            "deleted %d object(s), %d bytes, in %s", output.count, output.size, self._where()
        )
        ctx.metric("s3.objects.deleted.count", output.count)
        ctx.metric("s3.objects.deleted.size", output.size)
        return output


# -- Copy ----------------------------------------------------------------------------------------


class CopyObjectFrom(Model):
    """The source object of a copy."""

    bucket: str
    """Source bucket."""
    key: str
    """Source key."""
    version_id: str | None = None
    """A specific version of the source (versioned buckets)."""


class CopyObject(Model):
    """The destination of a copy; unset parts are the source's."""

    bucket: str | None = None
    """Destination bucket (the source bucket when unset)."""
    key: str | None = None
    """Destination key (the source key when unset)."""
    server_side_encryption: str | None = None
    """Encryption of the copy: ``AES256``, ``aws:kms`` (or Kestra's ``AWS_KMS``), ``NONE``."""
    kms_key_id: str | None = None
    """KMS key id or ARN, with ``aws:kms`` encryption."""


class CopyOutput(Output):
    bucket: str
    """Destination bucket."""
    key: str
    """Destination key."""
    e_tag: str | None = None
    """ETag of the copy."""
    version_id: str | None = None
    """Version of the copy, in a versioned bucket."""


class Copy(S3Task):
    """Copy an object within or between buckets, server-side (no data through Plait).

    Objects above 5 GiB are copied in ranges. With ``delete: true`` the source is deleted once
    the copy exists (a move).
    """

    type_name: ClassVar[str] = "plait.s3.Copy"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "Copy",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Archive an object into another bucket (move)",
            code=(
                "id: archive\ntype: plait.s3.Copy\n"
                "from:\n  bucket: landing\n  key: in/orders.csv\n"
                "to:\n  bucket: archive\n  key: 2024/orders.csv\n"
                "delete: true\n" + _CONNECTION
            ),
        ),
    )

    from_: CopyObjectFrom = Field(alias="from")
    """The source object."""
    to: CopyObject | None = None
    """The destination; its bucket and key default to the source's."""
    delete: bool = False
    """Delete the source once copied."""

    async def run(self, ctx: RunContext) -> CopyOutput:
        client, settings = await self.client(ctx)
        to = self.to or CopyObject()
        bucket = to.bucket or self.from_.bucket
        key = to.key or self.from_.key
        source = _set(
            {"Bucket": self.from_.bucket, "Key": self.from_.key}, VersionId=self.from_.version_id
        )
        origin = f"s3://{self.from_.bucket}/{self.from_.key}"
        target = f"s3://{bucket}/{key}"
        secrets = settings.secrets
        with s3_errors(
            f"copy of {origin}", bucket=self.from_.bucket, key=self.from_.key, secrets=secrets
        ):
            head = await client.head_object(**source)
        params = _set(
            {},
            ServerSideEncryption=_sse(to.server_side_encryption),
            SSEKMSKeyId=to.kms_key_id,
        )
        with s3_errors(f"copy of {origin} to {target}", bucket=bucket, key=key, secrets=secrets):
            copied = await copy_object(
                client,
                source=source,
                bucket=bucket,
                key=key,
                size=int(head.get("ContentLength") or 0),
                params=params,
                head=head,
            )
        ctx.log.info("copied %s to %s", origin, target)
        if self.delete and (bucket, key) != (self.from_.bucket, self.from_.key):
            with s3_errors(
                f"delete of {origin} after its copy",
                bucket=self.from_.bucket,
                key=self.from_.key,
                secrets=secrets,
            ):
                await client.delete_object(Bucket=self.from_.bucket, Key=self.from_.key)
            ctx.log.info("deleted %s", origin)
        return CopyOutput(
            bucket=bucket, key=key, e_tag=copied.get("ETag"), version_id=copied.get("VersionId")
        )


# -- CreateBucket --------------------------------------------------------------------------------


class CreateBucketOutput(Output):
    bucket: str
    """The bucket created."""
    region: str | None = None
    """The region it was created in."""


class CreateBucket(S3Task):
    """Create a bucket in the connection's region."""

    type_name: ClassVar[str] = "plait.s3.CreateBucket"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "CreateBucket",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Create a bucket with Object Lock",
            full=True,
            code=(
                "id: s3_create_bucket\nnamespace: company.team\n"
                "inputs:\n  - id: bucket\n    type: STRING\n    defaults: my-bucket\n"
                "tasks:\n  - id: create\n    type: plait.s3.CreateBucket\n"
                '    bucket: "{{ inputs.bucket }}"\n    objectLockEnabledForBucket: true\n'
                + _indent(_CONNECTION, 4)
            ),
        ),
    )

    bucket: str
    """Name of the bucket to create."""
    acl: str | None = None
    """Canned ACL of the bucket, e.g. ``private``."""
    grant_full_control: str | None = None
    """Grantees given read, write, read-ACP and write-ACP permissions."""
    grant_read: str | None = None
    """Grantees allowed to list the objects."""
    grant_read_acp: str | None = Field(default=None, alias="grantReadACP")
    """Grantees allowed to read the bucket ACL."""
    grant_write: str | None = None
    """Grantees allowed to create, overwrite and delete objects."""
    grant_write_acp: str | None = Field(default=None, alias="grantWriteACP")
    """Grantees allowed to write the bucket ACL."""
    object_lock_enabled_for_bucket: bool | None = None
    """Enable S3 Object Lock on the new bucket."""

    async def run(self, ctx: RunContext) -> CreateBucketOutput:
        client, settings = await self.client(ctx)
        region = self.region or client.meta.region_name
        params = _set(
            {"Bucket": self.bucket},
            ACL=self.acl,
            GrantFullControl=self.grant_full_control,
            GrantRead=self.grant_read,
            GrantReadACP=self.grant_read_acp,
            GrantWrite=self.grant_write,
            GrantWriteACP=self.grant_write_acp,
            ObjectLockEnabledForBucket=self.object_lock_enabled_for_bucket,
        )
        if region and region != "us-east-1":  # us-east-1 is S3's default and refuses the setting
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with s3_errors(
            f"creation of bucket '{self.bucket}'", bucket=self.bucket, secrets=settings.secrets
        ):
            await client.create_bucket(**params)
        ctx.log.info("created bucket %s in %s", self.bucket, region or "the default region")
        return CreateBucketOutput(bucket=self.bucket, region=region)


TASKS: tuple[type[Task], ...] = (Upload, Download, List, Delete, DeleteList, Copy, CreateBucket)
