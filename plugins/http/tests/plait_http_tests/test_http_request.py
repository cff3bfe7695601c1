"""plait.http.Request run directly against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from plait_http import HostNotAllowed, Request, RequestOutput
from plait_sdk import TaskFailure, UserError
from plait_sdk.testing import HarnessContext

from .conftest import Server
from .server import PASSWORD, TOKEN, USER


async def call(ctx: HarnessContext, **properties: Any) -> RequestOutput:
    return await Request.model_validate(properties).run(ctx)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_every_method_reaches_the_server(
    server: Server, ctx: HarnessContext, method: str
) -> None:
    out = await call(ctx, uri=server.url("/echo"), method=method.lower())
    assert out.code == 200
    assert out.body["method"] == method
    assert out.content_type is not None
    assert out.content_type.startswith("application/json")


async def test_head_has_no_body(server: Server, ctx: HarnessContext) -> None:
    out = await call(ctx, uri=server.url("/echo"), method="HEAD")
    assert out.code == 200
    assert out.body == ""
    assert out.length == 0


async def test_json_property_sends_a_json_document(server: Server, ctx: HarnessContext) -> None:
    payload = {"name": "Ada", "tags": ["a", "b"], "n": 3, "ok": True, "none": None}
    out = await call(ctx, uri=server.url("/echo"), method="POST", json=payload)
    assert out.body["contentType"] == "application/json"
    assert out.body["body"] == '{"name":"Ada","tags":["a","b"],"n":3,"ok":true,"none":null}'


async def test_text_body_defaults_to_json_content_type_as_kestra(
    server: Server, ctx: HarnessContext
) -> None:
    out = await call(ctx, uri=server.url("/echo"), method="POST", body='{"title": "Pen"}')
    assert out.body["contentType"] == "application/json; charset=UTF-8"
    assert out.body["body"] == '{"title": "Pen"}'
    out = await call(
        ctx, uri=server.url("/echo"), method="PUT", body="plain words", contentType="text/plain"
    )
    assert out.body["contentType"] == "text/plain; charset=UTF-8"
    assert out.body["body"] == "plain words"


async def test_form_data_is_url_encoded(server: Server, ctx: HarnessContext) -> None:
    out = await call(
        ctx,
        uri=server.url("/echo"),
        method="POST",
        formData={"user": "John Doe", "n": 2, "flag": True, "many": ["x", "y&z"]},
    )
    assert out.body["contentType"] == "application/x-www-form-urlencoded"
    assert out.body["form"] == [
        ["user", "John Doe"],
        ["n", "2"],
        ["flag", "true"],
        ["many", "x"],
        ["many", "y&z"],
    ]


async def test_multipart_uploads_files_from_internal_storage(
    server: Server, ctx: HarnessContext
) -> None:
    data = bytes(range(256)) * 4000  # ~1 MB of binary
    uri = await ctx.storage.put("orders.csv", data)
    other = await ctx.storage.put("blob.bin", b"second file")
    out = await call(
        ctx,
        uri=server.url("/echo"),
        method="POST",
        contentType="multipart/form-data",
        formData={
            "description": "monthly report",
            "file": uri,
            "renamed": {"name": "report 2024.pdf", "content": other},
            "inline": {"name": "note.txt", "content": "just text"},
            "meta": {"a": 1},
        },
    )
    parts = {p["name"]: p for p in out.body["parts"]}
    assert parts["description"]["text"] == "monthly report"
    assert parts["description"]["filename"] is None
    assert parts["file"]["filename"] == "orders.csv"
    assert parts["file"]["contentType"] == "text/csv"
    assert parts["file"]["size"] == len(data)
    assert parts["file"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert parts["renamed"]["filename"] == "report 2024.pdf"
    assert parts["renamed"]["text"] == "second file"
    assert parts["inline"]["filename"] == "note.txt"
    assert parts["inline"]["text"] == "just text"
    assert parts["meta"]["text"] == '{"a":1}'
    assert out.body["headers"]["Content-Length"] is not None  # streamed with a known length


async def test_multipart_with_a_missing_file_fails_clearly(
    server: Server, ctx: HarnessContext
) -> None:
    with pytest.raises(UserError, match="does not exist"):
        await call(
            ctx,
            uri=server.url("/echo"),
            method="POST",
            contentType="multipart/form-data",
            formData={"file": f"plait:///tests/flow/executions/{ctx.execution_id}/nope.csv"},
        )


async def test_query_params_are_added_to_the_url(server: Server, ctx: HarnessContext) -> None:
    out = await call(
        ctx,
        uri=server.url("/echo?fixed=1"),
        params={"q": "a b", "n": 5, "many": ["x", "y"], "flag": False},
    )
    assert out.body["query"] == [
        ["fixed", "1"],
        ["q", "a b"],
        ["n", "5"],
        ["many", "x"],
        ["many", "y"],
        ["flag", "false"],
    ]


async def test_headers_are_sent_and_win(server: Server, ctx: HarnessContext) -> None:
    out = await call(
        ctx,
        uri=server.url("/echo"),
        method="POST",
        body="<a/>",
        headers={"X-Trace": "abc", "X-Count": 5, "Content-Type": "application/xml"},
    )
    sent = out.body["headers"]
    assert sent["X-Trace"] == "abc"
    assert sent["X-Count"] == "5"
    assert sent["Content-Type"] == "application/xml"
    assert sent["User-Agent"].startswith("plait-http/")
    assert sent["Host"] == f"127.0.0.1:{server.port}"


async def test_basic_auth_is_sent_and_masked(server: Server, ctx: HarnessContext) -> None:
    out = await call(
        ctx,
        uri=server.url("/auth/basic"),
        options={"auth": {"type": "BASIC", "username": USER, "password": PASSWORD}},
    )
    assert out.code == 200
    assert out.body == {"user": USER}
    assert PASSWORD in ctx.masker.values


async def test_kestra_basic_auth_options_and_url_credentials(
    server: Server, ctx: HarnessContext
) -> None:
    out = await call(
        ctx,
        uri=server.url("/auth/basic"),
        options={"basicAuthUser": USER, "basicAuthPassword": PASSWORD},
    )
    assert out.code == 200
    with_userinfo = server.url("/auth/basic").replace("http://", f"http://{USER}:{PASSWORD}@")
    out = await call(ctx, uri=with_userinfo)
    assert out.code == 200
    assert PASSWORD not in out.uri
    assert USER not in out.uri


async def test_wrong_password_fails_with_the_status(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"HTTP 401 Unauthorized from GET .*: bad credentials"):
        await call(
            ctx,
            uri=server.url("/auth/basic"),
            options={"auth": {"type": "BASIC", "username": USER, "password": "nope"}},
        )


async def test_bearer_token_is_sent_and_never_logged(server: Server, ctx: HarnessContext) -> None:
    out = await call(
        ctx,
        uri=server.url("/auth/bearer"),
        options={
            "auth": {"type": "BEARER", "token": TOKEN},
            "logs": ["REQUEST_HEADERS", "RESPONSE_HEADERS", "RESPONSE_BODY"],
        },
    )
    assert out.code == 200
    assert out.body["ok"] is True
    assert TOKEN in ctx.masker.values
    text = ctx.log_text
    assert "request headers:" in text
    assert "authorization: <redacted>" in text
    assert "response body:" in text
    assert TOKEN not in text  # the response body echoes it, the masker hides it


async def test_json_text_and_binary_responses(server: Server, ctx: HarnessContext) -> None:
    out = await call(ctx, uri=server.url("/json"))
    assert out.body == {"hello": "world", "items": [1, 2, 3]}
    assert out.headers["content-type"] == ["application/json; charset=utf-8"]
    out = await call(ctx, uri=server.url("/text"))
    assert out.body == "héllo wörld"
    out = await call(ctx, uri=server.url("/binary"))
    assert isinstance(out.body, str)
    assert out.body.startswith("plait:///")
    assert out.body_uri == out.body
    assert await ctx.storage.read_bytes(out.body) == bytes(range(256)) * 4


async def test_large_bodies_go_to_internal_storage(server: Server, ctx: HarnessContext) -> None:
    out = await call(ctx, uri=server.url("/big-json?items=50000"), maxInlineBodySize=10_000)
    assert out.body_uri is not None
    assert out.body == out.body_uri
    assert out.body_uri.endswith("/body.json")
    stored = await ctx.storage.read_bytes(out.body_uri)
    assert len(stored) == out.length > 10_000
    assert stored.startswith(b'{"items": [0, 1, 2')
    small = await call(ctx, uri=server.url("/big-json?items=3"), maxInlineBodySize=10_000)
    assert small.body == {"items": [0, 1, 2]}
    assert small.body_uri is None


async def test_max_content_length_fails_a_too_large_response(
    server: Server, ctx: HarnessContext
) -> None:
    with pytest.raises(TaskFailure, match=r"larger than options.maxContentLength"):
        await call(ctx, uri=server.url("/big?size=200000"), options={"maxContentLength": 100_000})


async def test_redirects_are_followed(server: Server, ctx: HarnessContext) -> None:
    out = await call(ctx, uri=server.url("/chain/3"))
    assert out.code == 200
    assert out.uri == server.url("/echo")
    assert out.body["path"] == "/echo"
    assert sum("redirected to" in m for _, m in ctx.logs) == 3


async def test_redirects_not_followed_return_the_redirect(
    server: Server, ctx: HarnessContext
) -> None:
    out = await call(ctx, uri=server.url("/chain/1"), options={"followRedirects": False})
    assert out.code == 302
    assert out.headers["location"] == ["/echo"]
    assert server.state.hits["echo"] == 0


async def test_too_many_redirects_fail(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"too many redirects .*maxRedirects = 2"):
        await call(ctx, uri=server.url("/chain/5"), options={"maxRedirects": 2})


async def test_303_turns_a_post_into_a_get_and_307_keeps_it(
    server: Server, ctx: HarnessContext
) -> None:
    to = server.url("/echo")
    out = await call(
        ctx, uri=server.url(f"/redirect?status=303&to={to}"), method="POST", json={"a": 1}
    )
    assert out.body["method"] == "GET"
    assert out.body["body"] == ""
    out = await call(
        ctx, uri=server.url(f"/redirect?status=307&to={to}"), method="POST", json={"a": 1}
    )
    assert out.body["method"] == "POST"
    assert out.body["body"] == '{"a":1}'


async def test_307_re_sends_a_streamed_multipart_body(server: Server, ctx: HarnessContext) -> None:
    uri = await ctx.storage.put("data.bin", b"z" * 300_000)
    to = server.url("/echo")
    out = await call(
        ctx,
        uri=server.url(f"/redirect?status=307&to={to}"),
        method="POST",
        contentType="multipart/form-data",
        formData={"file": uri},
    )
    assert out.body["parts"][0]["size"] == 300_000


async def test_credentials_are_dropped_when_a_redirect_leaves_the_origin(
    server: Server, ctx: HarnessContext
) -> None:
    same = server.url("/echo")
    other = f"http://localhost:{server.port}/echo"  # same server, another origin
    options = {"auth": {"type": "BEARER", "token": TOKEN}}
    out = await call(ctx, uri=server.url(f"/redirect?to={same}"), options=options)
    assert out.body["headers"]["Authorization"] == f"Bearer {TOKEN}"
    out = await call(
        ctx,
        uri=server.url(f"/redirect?to={other}"),
        headers={"Cookie": "session=1"},
        options=options,
    )
    assert "Authorization" not in out.body["headers"]
    assert "Cookie" not in out.body["headers"]


async def test_a_slow_endpoint_fails_with_a_clear_timeout(
    server: Server, ctx: HarnessContext
) -> None:
    started = time.monotonic()
    with pytest.raises(TaskFailure) as caught:
        await call(ctx, uri=server.url("/slow"), options={"timeout": {"readIdleTimeout": "PT0.3S"}})
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "timed out waiting for data from" in message
    assert "after 0.3s (options.timeout.readIdleTimeout)" in message


async def test_connection_refused_fails_clearly(ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"cannot connect to http://127\.0\.0\.1:9/"):
        await call(ctx, uri="http://127.0.0.1:9/")


async def test_error_status_fails_with_status_and_bounded_excerpt(
    server: Server, ctx: HarnessContext
) -> None:
    with pytest.raises(TaskFailure) as caught:
        await call(ctx, uri=server.url("/status/500?size=20000"))
    message = str(caught.value)
    assert message.startswith(
        f"HTTP 500 Internal Server Error from GET {server.url('/status/500?size=20000')}: "
        "error body for 500 padding"
    )
    assert message.endswith("[...]")
    assert len(message) < 1300


async def test_allowed_status_codes(server: Server, ctx: HarnessContext) -> None:
    out = await call(ctx, uri=server.url("/status/404"), options={"allowedStatusCodes": [404]})
    assert out.code == 404
    assert out.body == "error body for 404"
    out = await call(
        ctx, uri=server.url("/status/409"), options={"allowedStatusCodes": ["2xx", 409]}
    )
    assert out.code == 409
    with pytest.raises(TaskFailure, match=r"HTTP 200 OK .*\(allowedStatusCodes: 201\)"):
        await call(ctx, uri=server.url("/echo"), options={"allowedStatusCodes": [201]})
    out = await call(ctx, uri=server.url("/status/503"), options={"allowFailed": True})
    assert out.code == 503


async def test_kestra_alias_names_and_properties_validate() -> None:
    task = Request.model_validate(
        {
            "uri": "https://example.com",
            "method": "post",
            "contentType": "multipart/form-data",
            "formData": {"user": "John"},
            "options": {
                "connectTimeout": "PT1M",
                "readTimeout": "PT30S",
                "connectionPoolIdleTimeout": "PT10S",
                "readIdleTimeout": "PT10M",
                "followRedirects": False,
                "allowFailed": True,
                "ssl": {"insecureTrustAllCertificates": True},
                "defaultCharset": "ISO-8859-1",
                "logs": ["REQUEST_HEADERS"],
            },
        }
    )
    assert task.method == "POST"
    assert task.effective_options().read_seconds() == 600


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"body": "x", "json": {"a": 1}}, "set only one of body, json and formData"),
        ({"method": "FETCH"}, "unsupported HTTP method"),
        ({"options": {"allowedStatusCodes": [999]}}, "is not an HTTP status code"),
        ({"options": {"allowedStatusCodes": ["2yy"]}}, "neither a status code"),
        ({"options": {"allowedHosts": ["*"]}}, "a bare '\\*' is not accepted"),
        ({"options": {"auth": {"type": "DIGEST"}}}, "does not match any of the expected tags"),
        ({"options": {"defaultCharset": "klingon"}}, "unknown charset"),
        ({"options": {"proxy": {"type": "HTTP"}}}, "needs an address"),
        ({"options": {"unknownOption": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_properties_are_refused(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Request.model_validate({"uri": "https://example.com", **properties})


async def test_an_invalid_uri_is_a_user_error(ctx: HarnessContext) -> None:
    with pytest.raises(UserError, match="is not an absolute http"):
        await call(ctx, uri="ftp://example.com/file")
    with pytest.raises(UserError, match="is not an absolute http"):
        await call(ctx, uri="/relative/path")


async def test_metrics_are_recorded(server: Server, ctx: HarnessContext) -> None:
    await call(ctx, uri=server.url("/json"))
    names = {metric.name for metric in ctx.metrics}
    assert {"response.length", "request.duration"} <= names


async def test_an_http_proxy_is_used_with_its_credentials(
    server: Server, ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test server doubles as a forward proxy: it gets the absolute URL of the target."""
    import plait_http._guard as guard_module

    async def resolver(host: str, port: int) -> list[str]:
        return ["203.0.113.10"]  # vetted, but the proxy makes the connection

    monkeypatch.setattr(guard_module, "resolve", resolver)
    out = await call(
        ctx,
        uri="http://api.test/echo",
        options={
            "proxy": {
                "type": "HTTP",
                "address": "127.0.0.1",
                "port": server.port,
                "username": "proxyuser",
                "password": "proxy-pa55",
            }
        },
    )
    assert out.body["host"] == "api.test"
    assert out.body["headers"]["Proxy-Authorization"].startswith("Basic ")
    assert "proxy-pa55" in ctx.masker.values
    with pytest.raises(HostNotAllowed):
        await call(
            ctx,
            uri="http://169.254.169.254/",
            options={"proxy": {"type": "HTTP", "address": "127.0.0.1", "port": server.port}},
        )


async def test_a_failing_redirect_hop_is_named(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"cannot connect to http://127\.0\.0\.1:9/next"):
        await call(ctx, uri=server.url("/redirect?to=http://127.0.0.1:9/next"))


async def test_a_body_that_stalls_times_out(server: Server, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"timed out waiting for data from .*/stall after 0\.3s"):
        await call(ctx, uri=server.url("/stall"), options={"readIdleTimeout": "PT0.3S"})
