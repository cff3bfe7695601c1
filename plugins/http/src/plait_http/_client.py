"""Sending one request: guard, TLS, auth, redirects hop by hop, timeouts and error messages.

Each task run uses its own ``httpx.AsyncClient`` (one connection pool), opened and closed by
:func:`exchange`: nothing outlives the task run, so no connection can leak and nothing needs the
``plait_shutdown`` hook. Redirects are followed here, not by httpx, so that every hop is checked
by the outbound guard and connects to the address the guard vetted (DNS pinning: the URL is sent
to the vetted IP, with the original ``Host`` header and TLS server name).
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from plait_sdk import RunContext, TaskFailure, UserError

from plait_http._body import (
    Body,
    is_multipart,
    json_body,
    multipart_body,
    text_body,
    urlencoded_body,
)
from plait_http._guard import Guard, HostNotAllowed
from plait_http._options import BasicAuth, BearerAuth, HttpOptions, LoggingType
from plait_http._version import USER_AGENT

#: Status codes that redirect (when they carry a Location).
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: How much of an error response's body a failure message quotes.
EXCERPT_BYTES = 1024  # the same figure as plait_http._tasks.EXCERPT_BYTES
#: Headers whose values are never logged.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Headers that describe a body, dropped with it when a redirect switches to GET.
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")
#: Headers carrying credentials, dropped when a redirect leaves the original origin.
_CREDENTIAL_HEADERS = ("authorization", "cookie")


@dataclass
class Prepared:
    """What to send, before any hop: method, URL, headers, body, auth."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    body: Body | None
    auth_header: str | None


@dataclass
class Exchange:
    """The final response of a request (after redirects) and the URL that produced it."""

    response: httpx.Response
    url: httpx.URL
    method: str
    redirects: int

    @property
    def shown_url(self) -> str:
        return display(self.url)


def display(url: httpx.URL) -> str:
    """A URL as shown in logs, messages and outputs: without user name and password."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def origin(url: httpx.URL) -> tuple[str, str, int]:
    default = 443 if url.scheme == "https" else 80
    return url.scheme, url.host, url.port or default


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    if origin(a) == origin(b):
        return True
    # an upgrade of the same host from http to https on default ports keeps credentials
    return (
        a.host == b.host
        and a.scheme == "http"
        and b.scheme == "https"
        and a.port in (None, 80)
        and b.port in (None, 443)
    )


async def prepare(
    ctx: RunContext,
    *,
    uri: str,
    method: str,
    headers: Mapping[str, str] | None,
    params: Mapping[str, Any] | None,
    body: str | None,
    json: Any,
    has_json: bool,
    form_data: Mapping[str, Any] | None,
    content_type: str | None,
    options: HttpOptions,
) -> Prepared:
    """Validate and assemble a request; credentials are registered with ``ctx.mask``."""
    try:
        url = httpx.URL(uri.strip().replace(" ", "%20"))
    except httpx.InvalidURL as error:
        raise UserError(f"uri: invalid URL {uri!r}: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UserError(f"uri: {display(url)!r} is not an absolute http:// or https:// URL")
    if params:
        url = url.copy_merge_params(
            {
                k: [_param(x) for x in v] if isinstance(v, list) else _param(v)
                for k, v in params.items()
            }
        )
    auth = options.effective_auth()
    if url.userinfo:
        if auth is None:
            auth = BasicAuth(username=url.username, password=url.password)
        url = url.copy_with(userinfo=b"")
    auth_header = _auth_header(auth, ctx)
    if options.proxy is not None and options.proxy.password:
        ctx.mask(options.proxy.password)
    prepared_body: Body | None = None
    if form_data:
        if is_multipart(content_type):
            prepared_body = await multipart_body(form_data, ctx)
        else:
            prepared_body = urlencoded_body(form_data, options.default_charset)
    elif has_json:
        prepared_body = json_body(json, content_type)
    elif body is not None:
        prepared_body = text_body(body, content_type, options.default_charset)
    return Prepared(method, url, dict(headers or {}), prepared_body, auth_header)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _auth_header(auth: BasicAuth | BearerAuth | None, ctx: RunContext) -> str | None:
    if isinstance(auth, BearerAuth):
        ctx.mask(auth.token)
        return f"Bearer {auth.token}"
    if isinstance(auth, BasicAuth):
        if auth.password:
            ctx.mask(auth.password)
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")
        ctx.mask(token)
        return f"Basic {token}"
    return None


async def _verify(options: HttpOptions, ctx: RunContext) -> ssl.SSLContext | bool:
    settings = options.ssl
    if settings is None:
        return True
    if settings.insecure_trust_all_certificates:
        ctx.log.warning("TLS certificate verification is disabled (insecureTrustAllCertificates)")
        return False
    if settings.ca_file is None and settings.ca_cert is None:
        return True
    path: str | None = None
    if settings.ca_file is not None:
        if settings.ca_file.startswith("plait://"):
            local = ctx.working_dir / "plait-http-ca.pem"
            path = str(await ctx.storage.download(settings.ca_file, local))
        else:
            path = settings.ca_file

    def build() -> ssl.SSLContext:
        cafile = str(Path(path).expanduser()) if path is not None else None
        return ssl.create_default_context(cafile=cafile, cadata=settings.ca_cert)

    try:
        return await ctx.run_blocking(build)
    except (OSError, ssl.SSLError, ValueError) as error:
        which = "caFile" if settings.ca_file is not None else "caCert"
        raise UserError(f"options.ssl.{which}: cannot load CA certificates: {error}") from None


def _proxy(options: HttpOptions) -> httpx.Proxy | None:
    proxy = options.proxy
    if proxy is None or proxy.type == "DIRECT" or not proxy.address:
        return None
    address = proxy.address if "://" in proxy.address else f"http://{proxy.address}"
    url = httpx.URL(address)
    if proxy.port is not None:
        url = url.copy_with(port=proxy.port)
    auth = (proxy.username, proxy.password or "") if proxy.username else None
    return httpx.Proxy(url, auth=auth)


async def _vetted_proxy(options: HttpOptions, guard: Guard) -> httpx.Proxy | None:
    """The proxy, once the outbound guard has let it through like any other destination.

    A plain ``http://`` proxy named by host name is then reached at the address the guard
    vetted (no second lookup); an ``https://`` proxy needs its name for TLS and keeps it.
    """
    proxy = _proxy(options)
    if proxy is None:
        return None
    url = proxy.url
    try:
        addresses = await guard.vet(
            url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)
        )
    except HostNotAllowed as error:
        raise HostNotAllowed(f"options.proxy: {error}") from None
    if url.scheme == "http" and not _is_ip(url.host):
        return httpx.Proxy(url.copy_with(host=addresses[0]), auth=proxy.auth)
    return proxy


def _redact(headers: httpx.Headers) -> str:
    return ", ".join(
        f"{k}: {'<redacted>' if k.lower() in _SECRET_HEADERS else v}"
        for k, v in headers.multi_items()
    )


@asynccontextmanager
async def exchange(
    prepared: Prepared, options: HttpOptions, ctx: RunContext
) -> AsyncIterator[Exchange]:
    """Send ``prepared`` (following redirects if asked) and yield the final streamed response.

    Every ``httpx`` error, while sending or while the caller reads the body, becomes a
    :class:`TaskFailure` naming the URL and what went wrong. The response and the client are
    closed on exit.
    """
    guard = Guard(options.allowed_hosts)
    proxy = await _vetted_proxy(options, guard)
    timeout = httpx.Timeout(
        connect=options.connect_seconds(),
        read=options.read_seconds(),
        write=options.read_seconds(),
        pool=options.connect_seconds(),
    )
    verify = await _verify(options, ctx)
    current = prepared.url
    async with httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        proxy=proxy,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        try:
            result = await _follow(client, prepared, options, guard, ctx, pinned=proxy is None)
            current = result.url
            try:
                yield result
            finally:
                await result.response.aclose()
        except httpx.HTTPError as error:
            raise _failure(error, current, options) from None


async def _follow(
    client: httpx.AsyncClient,
    prepared: Prepared,
    options: HttpOptions,
    guard: Guard,
    ctx: RunContext,
    *,
    pinned: bool,
) -> Exchange:
    method = prepared.method
    url = prepared.url
    headers = dict(prepared.headers)
    body = prepared.body
    auth_header = prepared.auth_header
    logs = set(options.logs or ())
    if LoggingType.REQUEST_BODY in logs and body is not None:
        ctx.log.info("request body: %s", _shorten(body.preview))
    for hop in range(options.max_redirects + 1):
        response = await _send(
            client,
            method,
            url,
            headers,
            body,
            auth_header,
            guard,
            ctx,
            options,
            pinned=pinned,
            log_headers=LoggingType.REQUEST_HEADERS in logs,
        )
        response_url = url
        if LoggingType.RESPONSE_HEADERS in logs:
            ctx.log.info("response headers: %s", _redact(response.headers))
        location = response.headers.get("location")
        if not options.follow_redirects or response.status_code not in REDIRECTS or not location:
            return Exchange(response, response_url, method, hop)
        await response.aclose()
        try:
            target = url.join(location)
        except httpx.InvalidURL:
            raise TaskFailure(
                f"{display(url)} redirected to an invalid URL: {location[:200]!r}"
            ) from None
        if target.scheme not in ("http", "https"):
            raise HostNotAllowed(
                f"{display(url)} redirected to {display(target)}: only http and https are allowed"
            )
        code = response.status_code
        if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
            method = "GET"
            body = None
            headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
        if not _same_origin(prepared.url, target):
            auth_header = None
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
        ctx.log.info("HTTP %d: redirected to %s", code, display(target))
        url = target
    raise TaskFailure(
        f"too many redirects from {display(prepared.url)} "
        f"(more than options.maxRedirects = {options.max_redirects})"
    )


async def _send(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: Body | None,
    auth_header: str | None,
    guard: Guard,
    ctx: RunContext,
    options: HttpOptions,
    *,
    pinned: bool,
    log_headers: bool,
) -> httpx.Response:
    addresses = await guard.vet(
        url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)
    )
    merged = httpx.Headers(body.headers if body is not None else {})
    for key, value in headers.items():
        merged[key] = value
    if auth_header is not None and "authorization" not in merged:
        merged["Authorization"] = auth_header
    ctx.log.info("%s %s", method, display(url))
    if log_headers:
        ctx.log.info("request headers: %s", _redact(merged))
    try:
        return await _connect(client, method, url, merged, body, addresses, ctx, pinned=pinned)
    except httpx.HTTPError as error:
        raise _failure(error, url, options) from None


async def _connect(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: httpx.Headers,
    body: Body | None,
    addresses: list[str],
    ctx: RunContext,
    *,
    pinned: bool,
) -> httpx.Response:
    """Send to the first vetted address that accepts a connection (or through the proxy)."""
    if not pinned:
        request = client.build_request(
            method, url, headers=headers, content=body.make() if body is not None else None
        )
        return await client.send(request, stream=True)
    last: httpx.HTTPError | None = None
    for index, address in enumerate(addresses):
        target = url.copy_with(host=address)
        pinned_headers = httpx.Headers(headers)
        if "host" not in pinned_headers:
            pinned_headers["Host"] = url.netloc.decode("ascii")
        extensions: dict[str, Any] = {}
        if url.scheme == "https" and not _is_ip(url.host):
            extensions["sni_hostname"] = url.raw_host.decode("ascii")
        request = client.build_request(
            method,
            target,
            headers=pinned_headers,
            content=body.make() if body is not None else None,
            extensions=extensions,
        )
        try:
            return await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            last = error
            if index + 1 < len(addresses):
                ctx.log.debug(
                    "cannot connect to %s (%s): %s; trying the next address",
                    url.host,
                    address,
                    error,
                )
    assert last is not None
    raise last


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _shorten(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _failure(error: httpx.HTTPError, url: httpx.URL, options: HttpOptions) -> TaskFailure:
    shown = display(url)
    if isinstance(error, httpx.ConnectTimeout):
        return TaskFailure(
            f"timed out connecting to {shown} after {options.connect_seconds():g}s "
            "(options.timeout.connectTimeout)"
        )
    if isinstance(error, httpx.ReadTimeout):
        return TaskFailure(
            f"timed out waiting for data from {shown} after {options.read_seconds():g}s "
            f"({options.read_timeout_name()})"
        )
    if isinstance(error, httpx.TimeoutException):
        return TaskFailure(f"timed out talking to {shown}: {type(error).__name__}")
    if isinstance(error, httpx.ConnectError):
        return TaskFailure(f"cannot connect to {shown}: {error or type(error).__name__}")
    return TaskFailure(f"request to {shown} failed: {type(error).__name__}: {error}")
