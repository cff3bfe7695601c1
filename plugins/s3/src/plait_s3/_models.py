"""Properties and output models shared by the tasks and the trigger."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from plait_sdk import Model, RunContext, TaskFailure
from pydantic import Field

from plait_s3._client import POOL, ConnectionSettings, S3Client


class Filter(StrEnum):
    """Which keys a listing keeps."""

    FILES = "FILES"
    DIRECTORY = "DIRECTORY"
    BOTH = "BOTH"


class Action(StrEnum):
    """What the trigger does with the objects of an execution it started."""

    NONE = "NONE"
    MOVE = "MOVE"
    DELETE = "DELETE"


class S3Connection(Model):
    """Connection properties of every S3 task and of the trigger (Kestra's names)."""

    region: str | None = None
    """AWS region, e.g. ``eu-central-1``; default from the standard AWS configuration."""
    endpoint_override: str | None = None
    """Endpoint URL of an S3-compatible store (MinIO, Ceph, R2...), e.g. ``http://minio:9000``."""
    access_key_id: str | None = Field(default=None, repr=False)
    """Access key id; use ``{{ secret('...') }}``. Unset: the standard AWS credential chain."""
    secret_key_id: str | None = Field(default=None, repr=False)
    """Secret access key; use ``{{ secret('...') }}``. Required with ``accessKeyId``."""
    session_token: str | None = Field(default=None, repr=False)
    """Session token of temporary credentials (STS); use ``{{ secret('...') }}``."""
    force_path_style: bool = False
    """Address buckets as ``endpoint/bucket/key`` rather than ``bucket.endpoint/key``.

    Needed by most S3-compatible stores (MinIO, Ceph) reached through ``endpointOverride``."""
    compatibility_mode: bool = False
    """Maximise compatibility with S3-compatible stores: send checksums only where S3 requires
    them (always the case when ``endpointOverride`` is set)."""

    def connection(self, ctx: RunContext) -> ConnectionSettings:
        """The connection settings, with every credential masked in this run's logs."""
        for value in (self.access_key_id, self.secret_key_id, self.session_token):
            if value:
                ctx.mask(value)
        if bool(self.access_key_id) != bool(self.secret_key_id):
            raise TaskFailure(
                "accessKeyId and secretKeyId must be set together "
                "(or both left unset to use the standard AWS credential chain)"
            )
        if self.session_token and not self.access_key_id:
            raise TaskFailure("sessionToken needs accessKeyId and secretKeyId")
        return ConnectionSettings(
            region=self.region or None,
            endpoint=self.endpoint_override or None,
            access_key_id=self.access_key_id or None,
            secret_key_id=self.secret_key_id or None,
            session_token=self.session_token or None,
            force_path_style=self.force_path_style,
            compatibility_mode=self.compatibility_mode,
        )

    async def client(self, ctx: RunContext) -> tuple[S3Client, ConnectionSettings]:
        """The shared client of these connection settings (opened on first use)."""
        settings = self.connection(ctx)
        return await POOL.get(settings), settings


class S3Object(Model):
    """One listed object (or, with a delimiter, one common prefix ending in ``/``)."""

    key: str
    """The object's key."""
    etag: str | None = None
    """The object's entity tag, as S3 returns it (quoted)."""
    size: int = 0
    """Size in bytes (0 for a common prefix)."""
    last_modified: datetime | None = None
    """When the object was last written."""
    storage_class: str | None = None
    """Storage class (``STANDARD``, ``GLACIER``...)."""


class ObjectLocation(Model):
    """A bucket and a key."""

    bucket: str
    """The bucket."""
    key: str
    """The key."""


def object_of(entry: dict[str, object]) -> S3Object:
    """An :class:`S3Object` from an entry of ``ListObjectsV2``'s ``Contents``."""
    size = entry.get("Size")
    modified = entry.get("LastModified")
    return S3Object(
        key=str(entry["Key"]),
        etag=str(entry["ETag"]) if entry.get("ETag") else None,
        size=size if isinstance(size, int) else 0,
        last_modified=modified if isinstance(modified, datetime) else None,
        storage_class=str(entry["StorageClass"]) if entry.get("StorageClass") else None,
    )
