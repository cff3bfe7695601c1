"""Request bodies: text, JSON, URL-encoded and streamed multipart forms.

A body is built once per task run and can produce its content again, so a ``307``/``308``
redirect (which keeps the body) re-sends it: a multipart form streams its files from internal
storage each time rather than holding them in memory.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plait_sdk import RunContext, UserError

STORAGE_SCHEME = "plait://"
_MULTIPART = "multipart/form-data"
_URLENCODED = "application/x-www-form-urlencoded"
_DEFAULT_BODY_TYPE = "application/json"

Content = bytes | AsyncIterator[bytes]


@dataclass
class Body:
    """A request body: the headers describing it and a way to produce its bytes (again)."""

    headers: dict[str, str]
    make: Callable[[], Content]
    preview: str
    """What ``REQUEST_BODY`` logging shows."""


@dataclass
class _Part:
    name: str
    data: bytes | None = None
    uri: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    head: bytes = field(default=b"")


def text_of(value: Any) -> str:
    """A form value as text: strings as they are, booleans ``true``/``false``, others as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _with_charset(content_type: str, charset: str) -> str:
    if "charset=" in content_type.lower() or not (
        content_type.startswith("text/") or content_type.endswith(("json", "xml"))
    ):
        return content_type
    return f"{content_type}; charset={charset}"


def text_body(text: str, content_type: str | None, charset: str) -> Body:
    data = text.encode(charset)
    kind = _with_charset(content_type or _DEFAULT_BODY_TYPE, charset)
    return Body({"Content-Type": kind}, lambda: data, text)


def json_body(value: Any, content_type: str | None) -> Body:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    data = text.encode("utf-8")
    return Body({"Content-Type": content_type or _DEFAULT_BODY_TYPE}, lambda: data, text)


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == _MULTIPART


def urlencoded_body(form: Mapping[str, Any], charset: str) -> Body:
    pairs: list[tuple[str, str]] = []
    for key, value in form.items():
        if isinstance(value, dict):
            raise UserError(
                f"formData.{key}: a file (a map with name and content) needs "
                "contentType: multipart/form-data"
            )
        values = value if isinstance(value, list) else [value]
        pairs.extend((key, text_of(v)) for v in values if v is not None)
    text = urllib.parse.urlencode(pairs, encoding=charset)
    data = text.encode("ascii")
    return Body({"Content-Type": _URLENCODED}, lambda: data, text)


def _quote(value: str) -> str:
    """A Content-Disposition parameter value, escaped as browsers do (WHATWG)."""
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _file_name(uri: str) -> str:
    return urllib.parse.unquote(uri.rstrip("/").rsplit("/", 1)[-1]) or "file"


async def multipart_body(form: Mapping[str, Any], ctx: RunContext) -> Body:
    """A multipart form whose ``plait:///`` values are files streamed from internal storage.

    - a string ``plait:///...`` is a file named after the URI's last segment;
    - a map ``{name, content}`` is a file called ``name``; ``content`` is a ``plait:///`` URI or
      the file's text;
    - any other string is a text field; other values are sent as JSON text.
    """
    boundary = secrets.token_hex(16)
    parts: list[_Part] = []
    for key, value in form.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            parts.append(await _part(key, item, ctx))
    total = 0
    previews: list[str] = []
    for part in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(part.name)}"'
        if part.filename is not None:
            head += f'; filename="{_quote(part.filename)}"'
        head += "\r\n"
        if part.content_type is not None:
            head += f"Content-Type: {part.content_type}\r\n"
        head += "\r\n"
        part.head = head.encode("utf-8")
        total += len(part.head) + part.size + 2
        previews.append(
            f"{part.name}=<file {part.filename}, {part.size} bytes>"
            if part.filename is not None
            else f"{part.name}={(part.data or b'').decode('utf-8', 'replace')}"
        )
    tail = f"--{boundary}--\r\n".encode()
    total += len(tail)

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part.head
            if part.uri is not None:
                async for chunk in ctx.storage.open(part.uri):
                    yield chunk
            else:
                yield part.data or b""
            yield b"\r\n"
        yield tail

    headers = {
        "Content-Type": f"{_MULTIPART}; boundary={boundary}",
        "Content-Length": str(total),
    }
    return Body(headers, stream, "multipart: " + ", ".join(previews))


async def _part(key: str, value: Any, ctx: RunContext) -> _Part:
    if isinstance(value, str) and value.startswith(STORAGE_SCHEME):
        return await _file_part(key, value, _file_name(value), ctx)
    if isinstance(value, dict) and "content" in value and ("name" in value or "file" in value):
        name = text_of(value.get("name", value.get("file")))
        content = value["content"]
        if isinstance(content, str) and content.startswith(STORAGE_SCHEME):
            return await _file_part(key, content, name, ctx)
        data = text_of(content).encode("utf-8")
        return _Part(key, data=data, filename=name, content_type=_guess(name), size=len(data))
    data = text_of(value).encode("utf-8")
    return _Part(key, data=data, size=len(data))


async def _file_part(key: str, uri: str, filename: str, ctx: RunContext) -> _Part:
    size = await ctx.storage.size(uri)
    return _Part(key, uri=uri, filename=filename, content_type=_guess(filename), size=size)


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
