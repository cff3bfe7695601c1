"""The REST API over real HTTP against a live server subprocess: flows, executions, logs."""

from __future__ import annotations

import json

import aiohttp
from live_server import YAML, LiveServer, call, wait_state

LOGGING_FLOW = """\
id: chatty
namespace: company.team
tasks:
  - id: one
    type: plait.core.Log
    message: first
  - id: two
    type: plait.core.Log
    message: second
  - id: three
    type: plait.core.Log
    message: third
  - id: four
    type: plait.core.Log
    message: fourth
"""


# -- flows -----------------------------------------------------------------------------------


async def test_deploy_update_revisions_diff_rollback(live: LiveServer) -> None:
    source = (
        "id: rev\nnamespace: company.team\ntasks:\n"
        "  - id: a\n    type: plait.core.Log\n    message: v1\n"
    )
    created = await call(live, "POST", "/flows", data=source, headers=YAML)
    assert (created["namespace"], created["id"], created["revision"]) == ("company.team", "rev", 1)
    assert created["definition"]["tasks"][0]["message"] == "v1"
    # Creating it again is a conflict: updates go through PUT.
    await call(live, "POST", "/flows", data=source, headers=YAML, expect=409)
    v2 = source.replace("v1", "v2")
    updated = await call(live, "PUT", "/flows/company.team/rev?revision=1", data=v2, headers=YAML)
    assert updated["revision"] == 2
    # Someone editing revision 1 now is too late: 409, nothing stored.
    stale = await call(
        live, "PUT", "/flows/company.team/rev?revision=1", data=source.replace("v1", "v3"),
        headers=YAML, expect=409,
    )  # fmt: skip
    assert "revision 2" in stale["message"]
    assert (await call(live, "GET", "/flows/company.team/rev"))["revision"] == 2
    revisions = await call(live, "GET", "/flows/company.team/rev/revisions")
    assert [r["revision"] for r in revisions["results"]] == [1, 2]
    diff = await call(live, "GET", "/flows/company.team/rev/diff?from=1&to=2")
    assert "-    message: v1\n+    message: v2\n" in diff["diff"]
    rolled = await call(live, "POST", "/flows/company.team/rev/rollback?revision=1")
    assert rolled["revision"] == 3
    assert rolled["source"] == source
    old = await call(live, "GET", "/flows/company.team/rev?revision=2")
    assert old["definition"]["tasks"][0]["message"] == "v2"
    text = await call(
        live, "GET", "/flows/company.team/rev", headers={"Accept": "application/x-yaml"}
    )
    assert text == source
    await call(live, "GET", "/flows/company.team/rev?revision=99", expect=404)
    found = await call(live, "GET", "/flows/search?namespace=company&q=re")
    assert [f["id"] for f in found["results"]] == ["rev"]
    disabled = await call(live, "POST", "/flows/company.team/rev/disable")
    assert disabled["disabled"] is True
    refused = await call(live, "POST", "/executions/company.team/rev", expect=422)
    assert "disabled" in refused["message"]
    assert (await call(live, "POST", "/flows/company.team/rev/enable"))["disabled"] is False
    await call(live, "DELETE", "/flows/company.team/rev")
    await call(live, "GET", "/flows/company.team/rev", expect=404)


async def test_invalid_flow_is_422_with_the_cli_problem_list_and_nothing_stored(
    live: LiveServer,
) -> None:
    bad = "id: broken\nnamespace: company.team\ntasks:\n  - id: a\n    type: plait.core.Lgo\n"
    error = await call(live, "POST", "/flows", data=bad, headers=YAML, expect=422)
    assert error["problems"][0].startswith(
        "flow.yaml:5:11: tasks[0].type: unknown task type 'plait.core.Lgo'"
    )
    assert error["errorId"]
    await call(live, "GET", "/flows/company.team/broken", expect=404)
    syntax = await call(live, "POST", "/flows", data="id: [unclosed\n", headers=YAML, expect=422)
    assert syntax["problems"][0].startswith("flow.yaml:")
    await call(live, "POST", "/flows", json={"id": "x"}, expect=415)


# -- executions ------------------------------------------------------------------------------


async def test_run_with_json_and_form_inputs(live: LiveServer) -> None:
    done = await call(
        live, "POST", "/executions/examples/hello?wait=true&labels=team:core",
        json={"inputs": {"name": "Ada"}, "labels": {"env": "test"}},
    )  # fmt: skip
    assert done["state"]["current"] == "SUCCESS"
    assert done["outputs"] == {"greeting": "Hello ADA!"}
    assert {"key": "env", "value": "test"} in done["labels"]
    assert {"key": "team", "value": "core"} in done["labels"]
    assert [r["taskId"] for r in done["taskRunList"]] == ["greet", "shout"]
    assert done["taskRunList"][0]["attempts"][0]["state"] == "SUCCESS"
    form = aiohttp.FormData()
    form.add_field("name", "Grace")
    started = await call(live, "POST", "/executions/examples/hello", data=form)
    assert started["state"]["current"] in ("CREATED", "RUNNING", "SUCCESS")
    ended = await wait_state(live, started["id"], "SUCCESS")
    assert ended["outputs"] == {"greeting": "Hello GRACE!"}


async def test_file_input_streamed_to_storage_and_output_download(live: LiveServer) -> None:
    flow = (
        "id: files\nnamespace: company.team\ninputs:\n  - id: data\n    type: FILE\n"
        "tasks:\n  - id: size\n    type: plait.core.storage.Size\n    uri: '{{ inputs.data }}'\n"
        "  - id: write\n    type: plait.core.storage.Write\n"
        "    content: 'made by {{ outputs.size.size }}'\n"
        "    extension: .txt\n"
    )
    await call(live, "POST", "/flows", data=flow, headers=YAML)
    payload = b"x" * 300_000
    form = aiohttp.FormData()
    form.add_field("data", payload, filename="big.bin", content_type="application/octet-stream")
    done = await call(live, "POST", "/executions/company.team/files?wait=true", data=form)
    assert done["state"]["current"] == "SUCCESS", done
    assert done["inputs"]["data"].startswith("plait:///company/team/files/executions/")
    outputs = {r["taskId"]: r["outputs"] for r in done["taskRunList"]}
    assert outputs["size"]["size"] == len(payload)
    uri = outputs["write"]["uri"]
    text = await call(live, "GET", f"/executions/{done['id']}/file", params={"path": uri})
    assert text == "made by 300000"
    # Another execution's file, or a path outside storage, is not reachable from this one.
    other = await call(live, "POST", "/executions/examples/hello?wait=true")
    await call(live, "GET", f"/executions/{other['id']}/file", params={"path": uri}, expect=404)
    await call(
        live, "GET", f"/executions/{done['id']}/file",
        params={"path": "plait:///../../etc/passwd"}, expect=400,
    )  # fmt: skip


async def test_search_pages_with_a_cursor_while_executions_are_created(live: LiveServer) -> None:
    flow = (
        "id: paged\nnamespace: company.paging\ntasks:\n"
        "  - id: a\n    type: plait.core.Log\n    message: hi\n"
    )
    await call(live, "POST", "/flows", data=flow, headers=YAML)
    made = [
        (await call(live, "POST", "/executions/company.paging/paged?wait=true"))["id"]
        for _ in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "namespace": "company.paging",
            "size": "3",
            **({"cursor": cursor} if cursor else {}),
        }
        page = await call(live, "GET", "/executions/search", params=params)
        seen += [e["id"] for e in page["results"]]
        # New executions while paging land before the first page, never inside later ones.
        await call(live, "POST", "/executions/company.paging/paged")
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    only = await call(
        live, "GET", "/executions/search",
        params={"namespace": "company.paging", "state": "SUCCESS", "size": "2"},
    )  # fmt: skip
    assert all(e["state"]["current"] == "SUCCESS" for e in only["results"])
    await call(live, "GET", "/executions/search", params={"state": "NOPE"}, expect=400)


async def test_pause_resume_kill_restart_replay_delete_labels(live: LiveServer) -> None:
    paused = await call(live, "POST", "/executions/examples/approval?wait=true")
    assert paused["state"]["current"] == "PAUSED"
    bad = await call(
        live, "POST", f"/executions/{paused['id']}/resume", json={"inputs": {"approved": "maybe"}},
        expect=422,
    )  # fmt: skip
    assert "approved" in bad["message"]
    await call(
        live, "POST", f"/executions/{paused['id']}/resume", json={"inputs": {"approved": True}}
    )
    done = await wait_state(live, paused["id"], "SUCCESS", "FAILED")
    assert done["state"]["current"] == "SUCCESS"
    again = await call(live, "POST", f"/executions/{paused['id']}/resume", expect=409)
    assert "not PAUSED" in again["message"]
    # Kill a paused one, restart it (it pauses again), replay an ended one.
    other = await call(live, "POST", "/executions/examples/approval?wait=true")
    killed = await call(live, "DELETE", f"/executions/{other['id']}/kill")
    assert killed["state"]["current"] == "KILLED"
    await call(live, "DELETE", f"/executions/{other['id']}/kill", expect=409)
    await call(live, "POST", f"/executions/{other['id']}/restart")
    await wait_state(live, other["id"], "PAUSED")
    replay = await call(live, "POST", f"/executions/{done['id']}/replay")
    assert replay["id"] != done["id"]
    assert replay["originalId"] == done["id"]
    labelled = await call(
        live, "POST", f"/executions/{done['id']}/labels", json=[{"key": "ok", "value": "yes"}]
    )
    assert labelled["labels"] == [{"key": "ok", "value": "yes"}]
    await call(live, "DELETE", f"/executions/{other['id']}", expect=409)
    await call(live, "DELETE", f"/executions/{done['id']}")
    await call(live, "GET", f"/executions/{done['id']}", expect=404)


# -- logs ------------------------------------------------------------------------------------


async def read_events(
    live: LiveServer, execution_id: str, last_event_id: str | None = None
) -> list[tuple[str | None, str, str]]:
    """(id, event, data) of every event until the stream ends."""
    headers = live.headers()
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[tuple[str | None, str, str]] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{live.api}/logs/{execution_id}/follow", headers=headers) as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        current: dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if "data" in current:
                    events.append(
                        (current.get("id"), current.get("event", "message"), current["data"])
                    )
                current = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            current[key] = value.lstrip(" ")
    return events


async def test_logs_query_and_follow_with_last_event_id(live: LiveServer) -> None:
    await call(live, "POST", "/flows", data=LOGGING_FLOW, headers=YAML)
    done = await call(live, "POST", "/executions/company.team/chatty?wait=true")
    lines = await call(live, "GET", f"/logs/{done['id']}")
    assert [line["message"] for line in lines] == ["first", "second", "third", "fourth"]
    only = await call(live, "GET", f"/logs/{done['id']}", params={"taskId": "two"})
    assert [line["message"] for line in only] == ["second"]
    events = await read_events(live, done["id"])
    messages = [json.loads(data)["message"] for _, kind, data in events if kind == "message"]
    assert messages == ["first", "second", "third", "fourth"]
    assert events[-1][1:] == ("end", "SUCCESS")
    # Reconnecting after the second line gets exactly the third and fourth, once.
    second_id = events[1][0]
    assert second_id is not None
    rest = await read_events(live, done["id"], last_event_id=second_id)
    assert [json.loads(d)["message"] for _, k, d in rest if k == "message"] == ["third", "fourth"]
    await call(
        live, "GET", f"/logs/{done['id']}/follow", headers={"Last-Event-ID": "x"}, expect=400
    )


async def test_follow_streams_lines_of_a_running_execution(live: LiveServer) -> None:
    flow = (
        "id: slow\nnamespace: company.team\ntasks:\n  - id: before\n    type: plait.core.Log\n"
        "    message: before\n  - id: nap\n    type: plait.core.Sleep\n    duration: PT1S\n"
        "  - id: after\n    type: plait.core.Log\n    message: after\n"
    )
    await call(live, "POST", "/flows", data=flow, headers=YAML)
    started = await call(live, "POST", "/executions/company.team/slow")
    events = await read_events(live, started["id"])
    assert [json.loads(d)["message"] for _, k, d in events if k == "message"] == [
        "before",
        "after",
    ]
    assert events[-1][1:] == ("end", "SUCCESS")


async def test_secret_inputs_are_never_returned_and_metrics_count(live: LiveServer) -> None:
    flow = (
        "id: secretive\nnamespace: company.team\ninputs:\n  - id: key\n    type: SECRET\n"
        "tasks:\n  - id: use\n    type: plait.core.Log\n    message: 'key is {{ inputs.key }}'\n"
    )
    await call(live, "POST", "/flows", data=flow, headers=YAML)
    done = await call(
        live, "POST", "/executions/company.team/secretive?wait=true",
        json={"inputs": {"key": "hunter2-very-secret"}},
    )  # fmt: skip
    assert done["state"]["current"] == "SUCCESS"
    assert done["inputs"] == {"key": "******"}
    shown = await call(live, "GET", f"/executions/{done['id']}")
    lines = await call(live, "GET", f"/logs/{done['id']}")
    assert "hunter2-very-secret" not in json.dumps(shown) + json.dumps(lines)
    async with aiohttp.ClientSession() as session, session.get(live.url + "/metrics") as response:
        text = await response.text()
    assert 'plait_executions_created_total{flow="secretive",namespace="company.team"} 1.0' in text
    ended = 'flow="secretive",namespace="company.team",state="SUCCESS"'
    assert f"plait_executions_ended_total{{{ended}}} 1.0" in text
