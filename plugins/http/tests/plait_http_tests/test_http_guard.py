"""The outbound guard: metadata and link-local addresses refused, redirects re-checked."""

from __future__ import annotations

import plait_http._guard as guard_module
import pytest
from plait_http import Download, HostNotAllowed, Request
from plait_http._guard import Guard
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from .conftest import Server


@pytest.mark.parametrize(
    "uri",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://2852039166/",  # 169.254.169.254 written as one number
        "http://0xA9FEA9FE/",
        "http://0.0.0.0:8080/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
    ],
)
async def test_metadata_and_link_local_addresses_are_refused(ctx: HarnessContext, uri: str) -> None:
    with pytest.raises(HostNotAllowed, match="refused to connect to"):
        await Request(uri=uri).run(ctx)


async def test_download_is_guarded_too(ctx: HarnessContext) -> None:
    with pytest.raises(HostNotAllowed, match="link-local"):
        await Download(uri="http://169.254.169.254/latest/user-data").run(ctx)


async def test_a_redirect_to_a_denied_address_is_refused(
    server: Server, ctx: HarnessContext
) -> None:
    target = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    with pytest.raises(HostNotAllowed) as caught:
        await Request(uri=server.url(f"/redirect?to={target}")).run(ctx)
    assert "169.254.169.254" in str(caught.value)
    assert "link-local" in str(caught.value)
    assert server.state.hits["redirect"] == 1


async def test_a_redirect_to_another_scheme_is_refused(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(HostNotAllowed, match="only http and https"):
        await Request(uri=server.url("/redirect?to=file:///etc/passwd")).run(ctx)


async def test_a_host_name_resolving_to_metadata_is_refused(
    ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "169.254.169.254"]

    monkeypatch.setattr(guard_module, "resolve", rebinding)
    with pytest.raises(
        HostNotAllowed, match=r"evil\.example \(169\.254\.169\.254\): blocked address \(link-local"
    ):
        await Request(uri="http://evil.example/").run(ctx)


async def test_the_connection_goes_to_the_vetted_address(
    server: Server, ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS is asked once, by the guard; the first address refuses, the second is used."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.2", "127.0.0.1"] if host == "api.test" else []

    monkeypatch.setattr(guard_module, "resolve", resolver)
    out = await Request(uri=f"http://api.test:{server.port}/echo").run(ctx)
    assert asked == ["api.test"]
    assert out.body["host"] == f"api.test:{server.port}"  # the Host header keeps the name
    assert out.uri == f"http://api.test:{server.port}/echo"


async def test_loopback_and_private_networks_are_allowed_by_default() -> None:
    guard = Guard()
    assert await guard.vet("http", "127.0.0.1", 80) == ["127.0.0.1"]
    assert await guard.vet("http", "::1", 80) == ["::1"]
    assert await guard.vet("https", "10.1.2.3", 443) == ["10.1.2.3"]
    assert await guard.vet("https", "192.168.0.10", 443) == ["192.168.0.10"]


async def test_allowed_hosts_is_an_allowlist(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(HostNotAllowed, match=r"not in options.allowedHosts \(api.example.com\)"):
        await Request(uri=server.url("/echo"), options={"allowedHosts": ["api.example.com"]}).run(
            ctx
        )
    for allowed in (["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]):
        uri = server.url("/echo")
        if allowed == ["localhost"]:
            uri = uri.replace("127.0.0.1", "localhost")
        out = await Request(uri=uri, options={"allowedHosts": allowed}).run(ctx)
        assert out.code == 200


async def test_allowed_hosts_applies_to_every_redirect_hop(
    server: Server, ctx: HarnessContext
) -> None:
    by_name = f"http://localhost:{server.port}"
    other = server.url("/echo")  # the same server, by IP: not a listed name
    with pytest.raises(HostNotAllowed, match=r"refused to connect to 127\.0\.0\.1"):
        await Request(
            uri=f"{by_name}/redirect?to={other}", options={"allowedHosts": ["localhost"]}
        ).run(ctx)
    assert server.state.hits["redirect"] == 1
    assert server.state.hits["echo"] == 0


async def test_only_an_explicit_ip_entry_lifts_the_deny_list() -> None:
    with pytest.raises(HostNotAllowed):
        await Guard(["0.0.0.0/0"]).vet("http", "169.254.169.254", 80)
    with pytest.raises(HostNotAllowed):
        await Guard(["169.0.0.0/8"]).vet("http", "169.254.169.254", 80)
    assert await Guard(["169.254.169.254"]).vet("http", "169.254.169.254", 80) == [
        "169.254.169.254"
    ]
    assert await Guard(["169.254.0.0/16"]).vet("http", "169.254.170.2", 80) == ["169.254.170.2"]


async def test_a_host_name_entry_does_not_lift_the_deny_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    monkeypatch.setattr(guard_module, "resolve", resolver)
    with pytest.raises(HostNotAllowed, match="link-local"):
        await Guard(["*.example.com"]).vet("http", "api.example.com", 80)
    with pytest.raises(HostNotAllowed, match="metadata host names"):
        await Guard(["*.google.internal"]).vet("http", "metadata.google.internal", 80)
    both = Guard(["metadata.google.internal", "169.254.169.254"])
    assert await both.vet("http", "metadata.google.internal", 80) == ["169.254.169.254"]


async def test_wildcards_match_subdomains_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["203.0.113.7"]

    monkeypatch.setattr(guard_module, "resolve", resolver)
    guard = Guard(["*.example.com"])
    assert await guard.vet("https", "api.example.com", 443) == ["203.0.113.7"]
    with pytest.raises(HostNotAllowed):
        await guard.vet("https", "example.com", 443)
    with pytest.raises(HostNotAllowed):
        await guard.vet("https", "example.com.evil.org", 443)


async def test_an_unresolvable_host_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(guard_module, "resolve", resolver)
    with pytest.raises(TaskFailure, match=r"cannot resolve host nowhere.invalid"):
        await Guard().vet("http", "nowhere.invalid", 80)


async def test_the_real_resolver_runs_off_the_loop() -> None:
    assert "127.0.0.1" in await guard_module.resolve("localhost", 80) or (
        "::1" in await guard_module.resolve("localhost", 80)
    )


@pytest.mark.parametrize(
    "uri",
    [
        "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
        "http://[2002:a9fe:a9fe:1234:5678::1]/",
        "http://[2002:6464:64c8::]/",  # 6to4 of 100.100.100.200
    ],
)
async def test_an_ipv4_address_carried_by_6to4_is_checked(ctx: HarnessContext, uri: str) -> None:
    with pytest.raises(HostNotAllowed, match=r"blocked address \((link-local|Alibaba)"):
        await Request(uri=uri).run(ctx)


async def test_a_harmless_6to4_address_is_allowed() -> None:
    assert await Guard().vet("http", "2002:7f00:1::", 80) == ["2002:7f00:1::"]


def _proxy(address: str, port: int | None = None) -> dict[str, object]:
    proxy: dict[str, object] = {"type": "HTTP", "address": address}
    if port is not None:
        proxy["port"] = port
    return proxy


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "link-local"),
        ("http://169.254.169.254:3128", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[2002:a9fe:a9fe::]", "link-local"),
        ("100.100.100.200", "Alibaba"),
        ("metadata.google.internal", "metadata host names"),
        ("socks5://127.0.0.1:1080", "only http and https"),
    ],
)
async def test_a_proxy_is_guarded_like_a_target(
    server: Server, ctx: HarnessContext, address: str, reason: str
) -> None:
    with pytest.raises(HostNotAllowed, match=rf"^options\.proxy: refused .*{reason}"):
        await Request(uri=server.url("/echo"), options={"proxy": _proxy(address)}).run(ctx)
    assert server.state.hits["echo"] == 0


async def test_a_denied_proxy_is_reached_only_when_allowed_hosts_names_it(
    server: Server, ctx: HarnessContext
) -> None:
    """0.0.0.0 is denied (unspecified address) and, on Linux, reaches the loopback server."""
    proxy = _proxy("0.0.0.0", server.port)
    with pytest.raises(HostNotAllowed, match=r"options\.proxy: .*0\.0\.0\.0.*unspecified"):
        await Request(uri="http://api.test/echo", options={"proxy": proxy}).run(ctx)
    assert server.state.hits["echo"] == 0
    options = {"proxy": proxy, "allowedHosts": ["api.test", "0.0.0.0"]}
    with pytest.raises(HostNotAllowed, match=r"refused to connect to 203\.0\.113\.10: not in"):
        # the target too must be allowed: listing the proxy opens nothing else
        await Request(
            uri="http://203.0.113.10/echo", options={**options, "allowedHosts": ["0.0.0.0"]}
        ).run(ctx)
    out = await Request(
        uri=server.url("/echo"), options={**options, "allowedHosts": ["127.0.0.1", "0.0.0.0"]}
    ).run(ctx)
    assert out.code == 200
    assert server.state.hits["echo"] == 1


async def test_an_allow_list_applies_to_the_proxy(server: Server, ctx: HarnessContext) -> None:
    options = {"proxy": _proxy("127.0.0.1", server.port), "allowedHosts": ["localhost"]}
    uri = server.url("/echo").replace("127.0.0.1", "localhost")
    with pytest.raises(
        HostNotAllowed, match=r"options\.proxy: refused to connect to 127\.0\.0\.1: not in"
    ):
        await Request(uri=uri, options=options).run(ctx)
    assert server.state.hits["echo"] == 0


async def test_a_proxy_host_name_is_vetted_and_pinned(
    server: Server, ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"proxy.test": ["127.0.0.1"], "api.test": ["203.0.113.10"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(guard_module, "resolve", resolver)
    options = {"proxy": _proxy("proxy.test", server.port)}
    out = await Request(uri="http://api.test/echo", options=options).run(ctx)
    assert out.body["host"] == "api.test"  # the test server answered as the proxy
    answers["proxy.test"] = ["169.254.169.254"]
    with pytest.raises(HostNotAllowed, match=r"options\.proxy: .*proxy\.test \(169\.254"):
        await Request(uri="http://api.test/echo", options=options).run(ctx)


async def test_proxy_environment_variables_are_ignored(
    server: Server, ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://169.254.169.254:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    out = await Request(uri=server.url("/echo")).run(ctx)
    assert out.code == 200
    assert server.state.hits["echo"] == 1
