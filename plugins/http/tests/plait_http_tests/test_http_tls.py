"""TLS: verification on by default, a CA file (local or in internal storage), or none at all."""

from __future__ import annotations

import plait_http._guard as guard_module
import pytest
from plait_http import Request
from plait_sdk import TaskFailure, UserError
from plait_sdk.testing import HarnessContext

from .conftest import Certificate, Server


async def test_an_untrusted_certificate_fails(tls_server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"cannot connect to https://127\.0\.0\.1.*CERTIFICATE"):
        await Request(uri=tls_server.url("/json")).run(ctx)


async def test_a_ca_file_makes_it_trusted_and_the_name_is_verified(
    tls_server: Server, ctx: HarnessContext, certificate: Certificate
) -> None:
    # by name: the connection goes to the vetted IP while TLS still checks "localhost"
    uri = f"https://localhost:{tls_server.port}/json"
    out = await Request(uri=uri, options={"ssl": {"caFile": str(certificate.cert)}}).run(ctx)
    assert out.code == 200
    assert out.body["hello"] == "world"
    out = await Request(
        uri=tls_server.url("/json"), options={"ssl": {"caCert": certificate.pem}}
    ).run(ctx)
    assert out.code == 200


async def test_the_certificate_name_is_checked_against_the_url_host(
    tls_server: Server,
    ctx: HarnessContext,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(guard_module, "resolve", resolver)
    with pytest.raises(TaskFailure, match=r"CERTIFICATE_VERIFY_FAILED|Hostname mismatch"):
        await Request(
            uri=f"https://wrong-name.test:{tls_server.port}/json",
            options={"ssl": {"caFile": str(certificate.cert)}},
        ).run(ctx)


async def test_a_ca_file_from_internal_storage(
    tls_server: Server, ctx: HarnessContext, certificate: Certificate
) -> None:
    uri = await ctx.storage.put("ca.pem", certificate.pem.encode())
    out = await Request(uri=tls_server.url("/json"), options={"ssl": {"caFile": uri}}).run(ctx)
    assert out.code == 200


async def test_insecure_trust_all_certificates(tls_server: Server, ctx: HarnessContext) -> None:
    out = await Request(
        uri=tls_server.url("/json"), options={"ssl": {"insecureTrustAllCertificates": True}}
    ).run(ctx)
    assert out.code == 200
    assert any("verification is disabled" in m for level, m in ctx.logs if level == "WARNING")


async def test_a_bad_ca_file_is_a_user_error(ctx: HarnessContext, tmp_path: object) -> None:
    with pytest.raises(UserError, match=r"options.ssl.caFile: cannot load CA certificates"):
        await Request(
            uri="https://127.0.0.1:1/", options={"ssl": {"caFile": "/nonexistent/ca.pem"}}
        ).run(ctx)
