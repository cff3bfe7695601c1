"""Connections: one aiobotocore client per connection settings, cached, closed on shutdown.

aiobotocore is untyped; everything about it stays in this module behind ``Any``. Errors from
botocore are turned into :class:`~plait_sdk.TaskFailure` messages that name the bucket or object
and the cause, and never contain a credential.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from plait_sdk import TaskFailure

log = logging.getLogger(__name__)

#: An aiobotocore S3 client (untyped).
S3Client = Any

MASK = "******"


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything that identifies a client: two tasks with equal settings share one."""

    region: str | None = None
    endpoint: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_key_id: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    force_path_style: bool = False
    compatibility_mode: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credential values set explicitly (to mask and to scrub from messages)."""
        values = (self.access_key_id, self.secret_key_id, self.session_token)
        return tuple(v for v in values if v)

    def cache_key(self) -> tuple[object, ...]:
        # Secrets are kept only as digests: the key may show up in a debugger or a dump.
        return (
            self.region,
            self.endpoint,
            self.force_path_style,
            self.compatibility_mode,
            _digest(self.access_key_id),
            _digest(self.secret_key_id),
            _digest(self.session_token),
        )


def _digest(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None


@dataclass
class _Entry:
    loop: asyncio.AbstractEventLoop
    opening: asyncio.Future[tuple[Any, S3Client]]


class ClientPool:
    """Clients by connection settings, opened on first use and closed by :meth:`close`.

    A client belongs to the event loop that opened it (its HTTP session does); a request from
    another loop opens a new one.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], _Entry] = {}
        self._session: Any = None

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, settings: ConnectionSettings) -> S3Client:
        loop = asyncio.get_running_loop()
        key = settings.cache_key()
        entry = self._entries.get(key)
        if entry is None or entry.loop is not loop:
            if entry is not None and not entry.loop.is_closed():
                log.warning("an S3 client opened on another event loop was not closed")
            entry = _Entry(loop, asyncio.ensure_future(self._open(settings)))
            self._entries[key] = entry
        try:
            _, client = await asyncio.shield(entry.opening)
        except BaseException:
            if entry.opening.done() and self._entries.get(key) is entry:
                del self._entries[key]  # a failed open is not cached: the next task retries
            raise
        return client

    async def _open(self, settings: ConnectionSettings) -> tuple[Any, S3Client]:
        if self._session is None:
            from aiobotocore.session import get_session  # type: ignore[import-untyped]

            self._session = get_session()
        options: dict[str, Any] = {
            "s3": {"addressing_style": "path" if settings.force_path_style else "auto"},
            "retries": {"max_attempts": 4, "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 120,
            "max_pool_connections": 32,
        }
        if settings.endpoint or settings.compatibility_mode:
            # S3-compatible stores (older MinIO, Ceph, R2...) reject botocore's default CRC
            # trailers; send checksums only where the API requires them.
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]

        kwargs: dict[str, Any] = {"config": AioConfig(**options)}
        if settings.region:
            kwargs["region_name"] = settings.region
        if settings.endpoint:
            kwargs["endpoint_url"] = settings.endpoint
        if settings.access_key_id:
            kwargs["aws_access_key_id"] = settings.access_key_id
            kwargs["aws_secret_access_key"] = settings.secret_key_id
            if settings.session_token:
                kwargs["aws_session_token"] = settings.session_token
        try:
            context = self._session.create_client("s3", **kwargs)
            client = await context.__aenter__()
        except ValueError as error:  # botocore validates the endpoint URL here
            message = scrub(str(error), settings.secrets)
            raise TaskFailure(f"invalid S3 connection settings: {message}") from None
        return context, client

    async def close(self) -> None:
        """Close every client opened on the running loop; forget the others."""
        entries, self._entries = self._entries, {}
        loop = asyncio.get_running_loop()
        for entry in entries.values():
            if entry.loop is not loop:
                continue  # its loop is gone or elsewhere: closing from here is not possible
            try:
                context, _ = await entry.opening
            except BaseException:
                continue
            try:
                await context.__aexit__(None, None, None)
            except Exception:  # closing must never stop the other clients from closing
                log.exception("closing an S3 client failed")


#: The process-wide pool, closed by the ``plait_shutdown`` hook.
POOL = ClientPool()


# -- errors ------------------------------------------------------------------------------------


def _botocore() -> Any:
    """botocore's exceptions module, imported on first use: aiobotocore costs a third of a
    second to import, which every `plait` command would pay at plugin discovery."""
    import botocore.exceptions  # type: ignore[import-untyped]

    return botocore.exceptions


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``******``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def error_code(error: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchKey``...), else ``None``."""
    if isinstance(error, _botocore().ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def http_status(error: BaseException) -> int | None:
    if isinstance(error, _botocore().ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in ("NoSuchKey", "NotFound", "404") or http_status(error) == 404


def is_client_error(error: BaseException) -> bool:
    return isinstance(error, _botocore().ClientError)


@contextmanager
def s3_errors(
    action: str,
    *,
    bucket: str | None = None,
    key: str | None = None,
    secrets: Sequence[str] = (),
) -> Iterator[None]:
    """Turn botocore errors raised inside the block into a clean :class:`TaskFailure`.

    ``action`` says what was attempted (``"upload to s3://b/k"``); the message adds the cause.
    """
    try:
        yield
    except TaskFailure:
        raise
    except _botocore().ClientError as error:
        message = _client_error(error, bucket, key)
        raise TaskFailure(scrub(f"{action}: {message}", secrets)) from None
    except _botocore().NoCredentialsError:
        raise TaskFailure(
            f"{action}: no AWS credentials found; set accessKeyId and secretKeyId "
            "(from secrets) or configure the standard AWS chain (environment, profile, role)"
        ) from None
    except _botocore().EndpointConnectionError as error:
        endpoint = error.kwargs.get("endpoint_url", "?")
        raise TaskFailure(
            scrub(f"{action}: cannot connect to the S3 endpoint {endpoint}", secrets)
        ) from None
    except _botocore().BotoCoreError as error:
        raise TaskFailure(scrub(f"{action}: {error}", secrets)) from None


def _client_error(error: Any, bucket: str | None, key: str | None) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code") or "Unknown")
    message = str(details.get("Message") or "").strip()
    status = http_status(error)
    target = f"s3://{bucket}/{key}" if bucket and key else f"bucket '{bucket}'"
    if code == "NoSuchBucket":
        return f"bucket '{details.get('BucketName') or bucket}' does not exist (NoSuchBucket)"
    if code in ("NoSuchKey", "NotFound") or (status == 404 and key):
        return f"object {target} does not exist ({code})"
    if code == "NoSuchUpload":
        return "the multipart upload was aborted or completed by someone else (NoSuchUpload)"
    if code == "InvalidAccessKeyId":
        return "the access key was rejected (InvalidAccessKeyId); check accessKeyId"
    if code == "SignatureDoesNotMatch":
        return (
            "the request signature does not match (SignatureDoesNotMatch); "
            "check secretKeyId (and region)"
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return f"the session token is invalid or expired ({code}); check sessionToken"
    if code in ("AccessDenied", "Forbidden") or status == 403:
        return f"access denied to {target} ({code})" + (f": {message}" if message else "")
    if code == "BucketAlreadyExists":
        return f"bucket name '{bucket}' is already taken by another account (BucketAlreadyExists)"
    if code == "BucketAlreadyOwnedByYou":
        return f"bucket '{bucket}' already exists and is yours (BucketAlreadyOwnedByYou)"
    if code in ("PreconditionFailed", "412"):
        return f"{target} changed meanwhile (PreconditionFailed)"
    return f"{code}: {message or 'no message'}" + (f" (HTTP {status})" if status else "")
