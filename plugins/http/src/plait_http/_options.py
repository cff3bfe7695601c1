"""Connection options shared by the HTTP tasks and the trigger (Kestra's ``options``)."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from plait_sdk import Model
from pydantic import BeforeValidator, Field, field_validator, model_validator

from plait_http._guard import parse_allow_entry


def _as_text(value: Any) -> Any:
    """Scalars a template rendered natively (``5``, ``true``) as the text a header expects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


#: A string property that also takes a number or boolean (rendered as text, as Kestra does).
Text = Annotated[str, BeforeValidator(_as_text)]

#: Default time to establish a connection.
DEFAULT_CONNECT_TIMEOUT = timedelta(seconds=30)
#: Default time a read may wait for data (Kestra's ``readIdleTimeout`` default).
DEFAULT_READ_TIMEOUT = timedelta(minutes=5)

_STATUS_CLASS = re.compile(r"^[1-5]xx$")


class TimeoutOptions(Model):
    """Timeouts of the connection (Kestra's ``options.timeout``)."""

    connect_timeout: timedelta | None = None
    """Time allowed to establish a connection, as an ISO-8601 duration (default ``PT30S``)."""
    read_idle_timeout: timedelta | None = None
    """Time a read may wait for data before failing, as an ISO-8601 duration (default ``PT5M``)."""


class BasicAuth(Model):
    """HTTP basic authentication."""

    type: Literal["BASIC"] = "BASIC"
    """``BASIC``."""
    username: Text
    """The user name."""
    password: Text = ""
    """The password; pass it with ``{{ secret('...') }}``. Masked in logs and outputs."""


class BearerAuth(Model):
    """Bearer-token authentication (``Authorization: Bearer <token>``)."""

    type: Literal["BEARER"] = "BEARER"
    """``BEARER``."""
    token: Text
    """The token; pass it with ``{{ secret('...') }}``. Masked in logs and outputs."""


Auth = Annotated[BasicAuth | BearerAuth, Field(discriminator="type")]


class SslOptions(Model):
    """TLS settings (Kestra's ``options.ssl``)."""

    insecure_trust_all_certificates: bool = False
    """Skip verification of the server's certificate. Insecure: for tests only."""
    ca_file: str | None = None
    """A PEM bundle of CA certificates to trust instead of the system's: a local path or a
    ``plait:///`` internal-storage URI."""
    ca_cert: str | None = None
    """PEM text of CA certificates to trust (for example ``{{ secret('MY_CA') }}``)."""


class ProxyOptions(Model):
    """An HTTP proxy to go through (Kestra's ``options.proxy``)."""

    type: Literal["DIRECT", "HTTP"] = "DIRECT"
    """``HTTP`` to use the proxy, ``DIRECT`` (default) to connect directly."""
    address: str | None = None
    """Host name or address of the proxy."""
    port: int | None = None
    """Port of the proxy."""
    username: Text | None = None
    """User name for proxy authentication."""
    password: Text | None = None
    """Password for proxy authentication. Masked in logs and outputs."""

    @model_validator(mode="after")
    def _address_for_http(self) -> ProxyOptions:
        if self.type == "HTTP" and not self.address:
            raise ValueError("proxy: an HTTP proxy needs an address")
        return self


class LoggingType(StrEnum):
    """What to log of each request and response (Kestra's ``options.logs``)."""

    REQUEST_HEADERS = "REQUEST_HEADERS"
    REQUEST_BODY = "REQUEST_BODY"
    RESPONSE_HEADERS = "RESPONSE_HEADERS"
    RESPONSE_BODY = "RESPONSE_BODY"


class HttpOptions(Model):
    """How to connect, authenticate, time out, follow redirects and judge the status code."""

    timeout: TimeoutOptions | None = None
    """Connection and read timeouts."""
    connect_timeout: timedelta | None = None
    """Time allowed to establish a connection (Kestra's older spelling of
    ``timeout.connectTimeout``)."""
    read_timeout: timedelta | None = None
    """Time a read may wait for data (older spelling of ``timeout.readIdleTimeout``)."""
    read_idle_timeout: timedelta | None = None
    """Time a read may wait for data (older spelling of ``timeout.readIdleTimeout``)."""
    connection_pool_idle_timeout: timedelta | None = None
    """Accepted for compatibility and ignored: each task run uses its own connection pool."""
    follow_redirects: bool = True
    """Follow redirects (``301``, ``302``, ``303``, ``307``, ``308``). Every hop passes the
    outbound guard again, and credentials are dropped when a hop leaves the original origin."""
    max_redirects: int = Field(default=10, ge=0, le=100)
    """How many redirects to follow at most before failing."""
    allow_failed: bool = False
    """Accept any status code, ``4xx`` and ``5xx`` included, instead of failing."""
    allowed_status_codes: list[int | str] | None = None
    """The status codes that succeed, as numbers or classes such as ``2xx``; any other fails the
    task. Default: every code below 400."""
    auth: Auth | None = None
    """Authentication: ``{type: BASIC, username, password}`` or ``{type: BEARER, token}``."""
    basic_auth_user: Text | None = None
    """User name for basic authentication (Kestra's older spelling of ``auth``)."""
    basic_auth_password: Text | None = None
    """Password for basic authentication (Kestra's older spelling of ``auth``)."""
    ssl: SslOptions | None = None
    """TLS settings: certificate verification and trusted CAs."""
    proxy: ProxyOptions | None = None
    """An HTTP proxy to connect through, checked by the outbound guard like any destination.
    Proxy environment variables are not used."""
    default_charset: str = "UTF-8"
    """Charset used to encode a text ``body`` and to decode a response that names none."""
    max_content_length: int | None = Field(default=None, ge=0)
    """Fail when the response body is larger than this many bytes (no limit by default)."""
    logs: list[LoggingType] | None = None
    """What to log: ``REQUEST_HEADERS``, ``REQUEST_BODY``, ``RESPONSE_HEADERS``,
    ``RESPONSE_BODY`` (credentials are redacted, bodies shortened)."""
    allowed_hosts: list[str] | None = None
    """Hosts this task may connect to: names, ``*.domain`` wildcards, IP addresses or CIDR
    networks. Unset: any host except link-local and cloud-metadata addresses. A blocked address
    is reachable only when an IP or CIDR entry names it."""

    @field_validator("allowed_status_codes")
    @classmethod
    def _status_codes(cls, value: list[int | str] | None) -> list[int | str] | None:
        if value is None:
            return None
        checked: list[int | str] = []
        for code in value:
            if isinstance(code, str) and code.strip().isdigit():
                code = int(code.strip())
            if isinstance(code, int):
                if not 100 <= code <= 599:
                    raise ValueError(f"allowedStatusCodes: {code} is not an HTTP status code")
                checked.append(code)
            elif _STATUS_CLASS.match(code.strip().lower()):
                checked.append(code.strip().lower())
            else:
                raise ValueError(
                    f"allowedStatusCodes: {code!r} is neither a status code nor a class like 2xx"
                )
        return checked

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or ():
            parse_allow_entry(entry)
        return value

    @field_validator("default_charset")
    @classmethod
    def _charset(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"defaultCharset: unknown charset {value!r}") from None
        return value

    # -- effective values ---------------------------------------------------------------------

    def connect_seconds(self) -> float:
        value = (self.timeout.connect_timeout if self.timeout else None) or self.connect_timeout
        return (value or DEFAULT_CONNECT_TIMEOUT).total_seconds()

    def read_seconds(self) -> float:
        value = (
            (self.timeout.read_idle_timeout if self.timeout else None)
            or self.read_idle_timeout
            or self.read_timeout
        )
        return (value or DEFAULT_READ_TIMEOUT).total_seconds()

    def read_timeout_name(self) -> str:
        if self.timeout and self.timeout.read_idle_timeout:
            return "options.timeout.readIdleTimeout"
        if self.read_idle_timeout:
            return "options.readIdleTimeout"
        if self.read_timeout:
            return "options.readTimeout"
        return "the default read timeout"

    def effective_auth(self) -> BasicAuth | BearerAuth | None:
        if self.auth is not None:
            return self.auth
        if self.basic_auth_user is not None:
            return BasicAuth(username=self.basic_auth_user, password=self.basic_auth_password or "")
        return None

    def accepts(self, code: int) -> bool:
        """Whether a response with status ``code`` succeeds."""
        if self.allow_failed:
            return True
        if self.allowed_status_codes is None:
            return code < 400
        for allowed in self.allowed_status_codes:
            if isinstance(allowed, int) and allowed == code:
                return True
            if isinstance(allowed, str) and str(code)[0] == allowed[0]:
                return True
        return False
