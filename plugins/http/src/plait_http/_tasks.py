"""The ``plait.http.Request`` and ``plait.http.Download`` tasks."""

from __future__ import annotations

import email.message
import json
import mimetypes
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from plait_sdk import Example, Model, Output, RunContext, Task, TaskFailure
from pydantic import Field, field_validator, model_validator

from plait_http._options import HttpOptions, LoggingType, Text

if TYPE_CHECKING:  # httpx is imported when a request is made, not at plugin discovery
    import httpx

    from plait_http._client import Exchange, Prepared

#: Bytes of a rejected response's body quoted in the error.
EXCERPT_BYTES = 1024

#: Methods a request may use.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})
#: Default of ``maxInlineBodySize``: bodies up to 1 MiB are returned inline.
INLINE_LIMIT = 1 << 20
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=,~-]+")


class HttpProperties(Model):
    """The properties that describe a request, shared by the tasks and the trigger."""

    uri: str
    """The absolute ``http://`` or ``https://`` URL to call."""
    method: str = "GET"
    """The HTTP method: ``GET``, ``POST``, ``PUT``, ``PATCH``, ``DELETE``, ``HEAD``, ``OPTIONS``
    or ``TRACE``."""
    headers: dict[str, Text] | None = None
    """Request headers. A header set here wins over one the task would set itself."""
    params: dict[str, Any] | None = None
    """Query parameters added to the URL (a list value repeats the parameter)."""
    body: str | None = None
    """The request body, as text (sent with ``contentType``, ``application/json`` by
    default)."""
    json_: Any = Field(default=None, alias="json")
    """A value sent as a JSON body (``contentType`` defaults to ``application/json``)."""
    form_data: dict[str, Any] | None = None
    """A form: URL-encoded by default, or ``multipart/form-data`` when ``contentType`` says
    so. In a multipart form a ``plait:///`` URI is sent as a file streamed from internal
    storage, and ``{name: report.csv, content: plait:///...}`` names the file."""
    content_type: str | None = None
    """The body's content type; ``multipart/form-data`` turns ``formData`` into a multipart
    form."""
    options: HttpOptions | None = None
    """Connection options: timeouts, redirects, accepted status codes, authentication, TLS,
    proxy and the hosts the request may reach."""

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.strip().upper()
        if method not in METHODS:
            raise ValueError(f"unsupported HTTP method {value!r}: use one of {sorted(METHODS)}")
        return method

    @model_validator(mode="after")
    def _one_body(self) -> HttpProperties:
        given = [
            name
            for name, present in (
                ("body", self.body is not None),
                ("json", "json_" in self.model_fields_set and self.json_ is not None),
                ("formData", bool(self.form_data)),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(f"set only one of body, json and formData (got {', '.join(given)})")
        return self

    def effective_options(self) -> HttpOptions:
        return self.options or HttpOptions()

    async def prepared(self, ctx: RunContext, options: HttpOptions) -> Prepared:
        from plait_http._client import prepare

        return await prepare(
            ctx,
            uri=self.uri,
            method=self.method,
            headers=self.headers,
            params=self.params,
            body=self.body,
            json=self.json_,
            has_json="json_" in self.model_fields_set and self.json_ is not None,
            form_data=self.form_data,
            content_type=self.content_type,
            options=options,
        )


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Response headers by lower-case name, each with the list of its values (as Kestra)."""
    headers: dict[str, list[str]] = {}
    for key, value in response.headers.multi_items():
        headers.setdefault(key.lower(), []).append(value)
    return headers


def _mime(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


def _is_json(mime: str | None) -> bool:
    return mime is not None and (mime == "application/json" or mime.endswith("+json"))


async def fail_for_status(exchanged: Exchange, options: HttpOptions) -> None:
    """Raise a :class:`TaskFailure` naming the status and quoting the body, unless accepted."""
    response = exchanged.response
    if options.accepts(response.status_code):
        return
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > EXCERPT_BYTES:
            break
    charset = response.charset_encoding or options.default_charset
    text = " ".join(bytes(data[:EXCERPT_BYTES]).decode(charset, "replace").split())
    if len(data) > EXCERPT_BYTES:
        text += " [...]"
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    message = f"HTTP {response.status_code}{reason} from {exchanged.method} {exchanged.shown_url}"
    if options.allowed_status_codes is not None:
        allowed = ", ".join(str(c) for c in options.allowed_status_codes)
        message += f" (allowedStatusCodes: {allowed})"
    raise TaskFailure(message + (f": {text}" if text else ""))


def storage_name(candidate: str | None, fallback: str) -> str:
    """A file name internal storage accepts, from a header or URL segment."""
    name = (candidate or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip("._")[:200]
    return name or fallback


def _disposition_name(response: httpx.Response) -> str | None:
    value = response.headers.get("content-disposition")
    if not value:
        return None
    message = email.message.Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return urllib.parse.unquote(name) if name else None


class RequestOutput(Output):
    """The response of ``plait.http.Request``."""

    uri: str
    """The URL that produced the response (the last one after redirects), without
    credentials."""
    code: int
    """The response's status code."""
    headers: dict[str, list[str]] = Field(default_factory=dict)
    """The response's headers by lower-case name, each a list of values."""
    body: Any = None
    """The body: parsed when the response is JSON, else text. When larger than
    ``maxInlineBodySize`` (or not text), the ``plait:///`` URI of the stored body instead."""
    body_uri: str | None = None
    """The internal-storage URI of the body when it was stored rather than returned inline."""
    length: int = 0
    """The body's size in bytes (after content decoding)."""
    content_type: str | None = None
    """The response's ``Content-Type`` header."""


class Request(HttpProperties, Task):
    """Call an HTTP endpoint and return the response's status code, headers and body.

    JSON responses are parsed (use ``{{ outputs.id.body.field }}``). A body larger than
    ``maxInlineBodySize`` is written to internal storage and ``body`` holds its URI. Status
    codes of 400 and above fail the task (with the status and an excerpt of the body) unless
    ``options.allowFailed`` or ``options.allowedStatusCodes`` says otherwise. Link-local and
    cloud-metadata addresses are refused (see ``options.allowedHosts``).
    """

    type_name: ClassVar[str] = "plait.http.Request"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.http.Request",
        "io.kestra.plugin.fs.http.Request",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="GET a JSON API with a bearer token from a secret",
            code=(
                "id: me\n"
                "type: plait.http.Request\n"
                "uri: https://api.example.com/v1/me\n"
                "options:\n"
                "  auth:\n"
                "    type: BEARER\n"
                "    token: \"{{ secret('API_TOKEN') }}\""
            ),
        ),
        Example(
            title="POST a JSON document, accepting 409 as a success",
            code=(
                "id: create\n"
                "type: plait.http.Request\n"
                "uri: https://api.example.com/v1/items\n"
                "method: POST\n"
                "json:\n"
                '  name: "{{ inputs.name }}"\n'
                "  tags: [a, b]\n"
                "options:\n"
                "  allowedStatusCodes: [2xx, 409]"
            ),
        ),
        Example(
            title="Upload a file of internal storage as a multipart form",
            code=(
                "id: upload\n"
                "type: plait.http.Request\n"
                "uri: https://files.example.com/upload\n"
                "method: POST\n"
                "contentType: multipart/form-data\n"
                "formData:\n"
                "  description: monthly report\n"
                "  file:\n"
                "    name: report.csv\n"
                '    content: "{{ outputs.extract.uri }}"'
            ),
        ),
    )

    max_inline_body_size: int = Field(default=INLINE_LIMIT, ge=0)
    """Bodies up to this many bytes are returned in ``body``; larger ones are stored in
    internal storage and ``body`` (and ``bodyUri``) holds their URI."""

    async def run(self, ctx: RunContext) -> RequestOutput:
        options = self.effective_options()
        prepared = await self.prepared(ctx, options)
        started = time.monotonic()
        from plait_http._client import exchange

        async with exchange(prepared, options, ctx) as exchanged:
            await fail_for_status(exchanged, options)
            response = exchanged.response
            data, stored, length = await _collect(
                response,
                ctx,
                limit=self.max_inline_body_size,
                options=options,
                shown=exchanged.shown_url,
            )
            code = response.status_code
            ctx.log.info("HTTP %d %s (%d bytes)", code, response.reason_phrase or "", length)
            headers = response_headers(response)
            mime = _mime(response)
            charset = response.charset_encoding or options.default_charset
            content_type = response.headers.get("content-type")
        ctx.metric("response.length", length)
        ctx.metric("request.duration", time.monotonic() - started, type="timer")
        body: Any = None
        if stored is None and data is not None:
            try:
                text = data.decode(charset)
            except (UnicodeDecodeError, LookupError):
                stored = await ctx.storage.put(_body_name(mime), data)
                ctx.log.info("the body is not %s text: stored as %s", charset, stored)
            else:
                body = _parse(text, mime)
                if LoggingType.RESPONSE_BODY in (options.logs or ()):
                    ctx.log.info("response body: %s", text[:2000])
        if stored is not None:
            body = stored
        return RequestOutput(
            uri=exchanged.shown_url,
            code=code,
            headers=headers,
            body=body,
            body_uri=stored,
            length=length,
            content_type=content_type,
        )


def _parse(text: str, mime: str | None) -> Any:
    if _is_json(mime) and text.strip():
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _body_name(mime: str | None) -> str:
    if _is_json(mime):
        return "body.json"
    extension = mimetypes.guess_extension(mime or "") or ".bin"
    return "body" + extension


async def _collect(
    response: httpx.Response,
    ctx: RunContext,
    *,
    limit: int,
    options: HttpOptions,
    shown: str,
) -> tuple[bytes | None, str | None, int]:
    """The body inline (up to ``limit`` bytes) or stored: ``(data, uri, length)``."""
    chunks = response.aiter_bytes()
    buffer = bytearray()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        _check_size(total, options, shown)
        buffer += chunk
        if len(buffer) > limit:
            break
    else:
        return bytes(buffer), None, total

    counted = {"total": total}

    async def rest() -> AsyncIterator[bytes]:
        yield bytes(buffer)
        buffer.clear()
        async for chunk in chunks:
            if ctx.cancelled:
                raise TaskFailure("cancelled while reading the response")
            counted["total"] += len(chunk)
            _check_size(counted["total"], options, shown)
            yield chunk

    uri = await ctx.storage.put(_body_name(_mime(response)), rest())
    ctx.log.info("the body is larger than %d bytes: stored as %s", limit, uri)
    return None, uri, counted["total"]


def _check_size(total: int, options: HttpOptions, shown: str) -> None:
    if options.max_content_length is not None and total > options.max_content_length:
        raise TaskFailure(
            f"the response from {shown} is larger than options.maxContentLength "
            f"({options.max_content_length} bytes)"
        )


class DownloadOutput(Output):
    """The downloaded file of ``plait.http.Download``."""

    uri: str
    """The ``plait:///`` URI of the downloaded file in internal storage."""
    code: int
    """The response's status code."""
    length: int
    """The file's size in bytes."""
    content_type: str | None = None
    """The response's ``Content-Type`` header."""
    headers: dict[str, list[str]] = Field(default_factory=dict)
    """The response's headers by lower-case name, each a list of values."""


class Download(HttpProperties, Task):
    """Download a file into internal storage, streamed: the body is never held in memory.

    The file is named after the ``Content-Disposition`` header, else the URL's last path
    segment. Status codes of 400 and above fail the task (see ``options.allowFailed``); so does
    an empty response unless ``failOnEmptyResponse`` is false.
    """

    type_name: ClassVar[str] = "plait.http.Download"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.http.Download",
        "io.kestra.plugin.fs.http.Download",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Download a CSV file and log its size",
            full=True,
            code=(
                "id: download\n"
                "namespace: demo\n"
                "tasks:\n"
                "  - id: extract\n"
                "    type: plait.http.Download\n"
                "    uri: https://example.com/data/orders.csv\n"
                "  - id: size\n"
                "    type: plait.core.Log\n"
                '    message: "{{ outputs.extract.uri }}: {{ outputs.extract.length }} bytes"'
            ),
        ),
    )

    fail_on_empty_response: bool = True
    """Fail when the server sends an empty body."""

    async def run(self, ctx: RunContext) -> DownloadOutput:
        options = self.effective_options()
        prepared = await self.prepared(ctx, options)
        started = time.monotonic()
        from plait_http._client import exchange

        async with exchange(prepared, options, ctx) as exchanged:
            await fail_for_status(exchanged, options)
            response = exchanged.response
            shown = exchanged.shown_url
            name = storage_name(
                _disposition_name(response) or urllib.parse.unquote(exchanged.url.path),
                "download",
            )
            counted = {"total": 0}

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in response.aiter_bytes():
                    if ctx.cancelled:
                        raise TaskFailure(f"cancelled while downloading {shown}")
                    counted["total"] += len(chunk)
                    _check_size(counted["total"], options, shown)
                    yield chunk

            uri = await ctx.storage.put(name, chunks())
            length = counted["total"]
            expected = response.headers.get("content-length")
            if (
                expected is not None
                and expected.isdigit()
                and "content-encoding" not in response.headers
                and exchanged.method != "HEAD"
                and int(expected) != length
            ):
                raise TaskFailure(
                    f"incomplete download from {shown}: got {length} bytes, "
                    f"Content-Length said {expected}"
                )
            if length == 0:
                if self.fail_on_empty_response and not options.allow_failed:
                    raise TaskFailure(
                        f"empty response from {shown} (HTTP {response.status_code}); "
                        "set failOnEmptyResponse: false to accept it"
                    )
                ctx.log.warning("the response from %s is empty", shown)
            ctx.log.info("downloaded %d bytes from %s to %s", length, shown, uri)
            output = DownloadOutput(
                uri=uri,
                code=response.status_code,
                length=length,
                content_type=response.headers.get("content-type"),
                headers=response_headers(response),
            )
        ctx.metric("response.length", length)
        ctx.metric("request.duration", time.monotonic() - started, type="timer")
        return output
