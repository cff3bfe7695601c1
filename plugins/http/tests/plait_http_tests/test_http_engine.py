"""End to end: flows using plait-http run by the real engine (Runner over SQLite)."""

from __future__ import annotations

import hashlib

from plait.flows import State

from .conftest import Harness, Server
from .server import TOKEN


def task_run(execution: object, task_id: str) -> object:
    found = [r for r in execution.task_runs if r.task_id == task_id]  # type: ignore[attr-defined]
    assert len(found) == 1, f"{task_id}: {len(found)} runs"
    return found[0]


async def test_bearer_token_from_a_secret_never_surfaces(harness: Harness, server: Server) -> None:
    ex = await harness.run(
        f"""
        id: bearer
        namespace: demo
        tasks:
          - id: me
            type: plait.http.Request
            uri: {server.url("/auth/bearer")}
            options:
              auth:
                type: BEARER
                token: "{{{{ secret('API_TOKEN') }}}}"
              logs: [REQUEST_HEADERS, RESPONSE_BODY]
          - id: show
            type: plait.core.Log
            message: "server said {{{{ outputs.me.body }}}} with {{{{ outputs.me.code }}}}"
        outputs:
          - id: echoed
            value: "{{{{ outputs.me.body.echo }}}}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    me = task_run(ex, "me")
    assert me.outputs["code"] == 200  # type: ignore[attr-defined]
    assert me.outputs["body"]["ok"] is True  # type: ignore[attr-defined]
    everything = await harness.everything(ex)
    assert TOKEN not in everything  # not in outputs, logs or the flow outputs
    assert "Bearer ******" in everything  # the echoed header, masked in the response log
    # The body holds the echoed token: a message printing it is derived from the secret.
    logs = await harness.repo.logs(ex.id)
    assert [r.message for r in logs if r.task_id == "show"] == ["******"]
    assert me.outputs["body"]["echo"] == f"Bearer {TOKEN}"  # type: ignore[attr-defined]


async def test_download_then_upload_the_file_as_multipart(harness: Harness, server: Server) -> None:
    ex = await harness.run(
        f"""
        id: relay
        namespace: demo
        tasks:
          - id: fetch
            type: io.kestra.plugin.core.http.Download
            uri: {server.url("/big?size=3000000")}
          - id: upload
            type: io.kestra.plugin.core.http.Request
            uri: {server.url("/echo")}
            method: POST
            contentType: multipart/form-data
            formData:
              note: from {{{{ flow.id }}}}
              file:
                name: data.bin
                content: "{{{{ outputs.fetch.uri }}}}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    fetch = task_run(ex, "fetch")
    assert fetch.outputs["length"] == 3_000_000  # type: ignore[attr-defined]
    assert fetch.outputs["uri"].startswith("plait:///demo/relay/executions/")  # type: ignore[attr-defined]
    parts = {p["name"]: p for p in task_run(ex, "upload").outputs["body"]["parts"]}  # type: ignore[attr-defined]
    assert parts["note"]["text"] == "from relay"
    assert parts["file"]["filename"] == "data.bin"
    assert parts["file"]["size"] == 3_000_000
    assert parts["file"]["sha256"] == hashlib.sha256(b"x" * 3_000_000).hexdigest()


async def test_an_error_status_fails_the_execution_with_an_excerpt(
    harness: Harness, server: Server
) -> None:
    ex = await harness.run(
        f"""
        id: failing
        namespace: demo
        tasks:
          - id: call
            type: plait.http.Request
            uri: {server.url("/status/503")}
          - id: never
            type: plait.core.Log
            message: not reached
        """
    )
    assert ex.state is State.FAILED
    call = task_run(ex, "call")
    assert call.error == (  # type: ignore[attr-defined]
        f"HTTP 503 Service Unavailable from GET {server.url('/status/503')}: error body for 503"
    )
    assert not [r for r in ex.task_runs if r.task_id == "never"]


async def test_a_redirect_to_cloud_metadata_fails_the_execution(
    harness: Harness, server: Server
) -> None:
    ex = await harness.run(
        """
        id: ssrf
        namespace: demo
        inputs:
          - id: url
            type: STRING
        tasks:
          - id: fetch
            type: plait.http.Request
            uri: "{{ inputs.url }}"
        """,
        {"url": server.url("/redirect?to=http://169.254.169.254/latest/meta-data/")},
    )
    assert ex.state is State.FAILED
    error = task_run(ex, "fetch").error  # type: ignore[attr-defined]
    assert "refused to connect to 169.254.169.254" in error


async def test_json_output_feeds_later_tasks_and_params_and_basic_auth(
    harness: Harness, server: Server
) -> None:
    ex = await harness.run(
        f"""
        id: chain
        namespace: demo
        tasks:
          - id: login
            type: io.kestra.plugin.fs.http.Request
            uri: {server.url("/auth/basic")}
            options:
              basicAuthUser: ada
              basicAuthPassword: "{{{{ secret('API_PASSWORD') }}}}"
          - id: search
            type: plait.http.Request
            uri: {server.url("/echo")}
            params:
              status: "{{{{ outputs.login.code }}}}"
              page: 2
            headers:
              X-Count: "{{{{ 1 + 1 }}}}"
        outputs:
          - id: query
            value: "{{{{ outputs.search.body.query }}}}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    search = task_run(ex, "search").outputs["body"]  # type: ignore[attr-defined]
    assert search["query"] == [["status", "200"], ["page", "2"]]
    assert search["headers"]["X-Count"] == "2"
    assert "s3cret-pa55word" not in await harness.everything(ex)


async def test_flow_validation_reports_bad_http_properties(harness: Harness) -> None:
    import pytest
    from plait_sdk import UserError

    with pytest.raises(UserError) as caught:
        await harness.run(
            """
            id: invalid
            namespace: demo
            tasks:
              - id: call
                type: plait.http.Request
                uri: https://example.com
                body: text
                json: {a: 1}
            """
        )
    assert "set only one of body, json and formData" in str(caught.value)
