"""Secrets over the API (admin only, names and metadata only, audited) and the plugin reference."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from live_server import PLAIT, YAML, LiveServer, call, wait_state

VALUE = "s3cr3t-Value-9f2c"
FLOW = """\
id: uses_secret
namespace: company.team
tasks:
  - id: say
    type: plait.core.Log
    message: "token is {{ secret('API_KEY') }}"
"""


def plait(live: LiveServer, *args: str) -> str:
    """The real CLI against the server's home: its standard output."""
    env = {**os.environ, "PLAIT_HOME": str(live.home)}
    done = subprocess.run(
        [str(PLAIT), *args], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return done.stdout


async def test_secrets_set_list_delete_never_read_back(live: LiveServer) -> None:
    base = "/namespaces/company.team/secrets"
    made = await call(live, "PUT", base, json={"key": "API_KEY", "value": VALUE})
    assert made["key"] == "API_KEY"
    assert made["namespace"] == "company.team"
    assert VALUE not in json.dumps(made)
    listed = await call(live, "GET", base)
    assert [s["key"] for s in listed["results"]] == ["API_KEY"]
    assert listed["total"] == 1
    assert VALUE not in json.dumps(listed)
    # There is no operation that reads a value back.
    await call(live, "GET", f"{base}/API_KEY", expect=405)
    # A flow of the namespace reads it (and it is masked in its logs); the read is audited.
    await call(live, "POST", "/flows", data=FLOW, headers=YAML)
    run = await call(live, "POST", "/executions/company.team/uses_secret")
    await wait_state(live, run["id"], "SUCCESS")
    logs = await call(live, "GET", f"/logs/{run['id']}")
    assert VALUE not in json.dumps(logs)
    assert any("******" in line["message"] for line in logs)
    reads = await asyncio.to_thread(plait, live, "secrets", "reads", run["id"])
    assert "API_KEY" in reads
    # Validation: bad names, empty values, unknown fields; nothing half-written.
    await call(live, "PUT", base, json={"key": "../x", "value": "v"}, expect=422)
    await call(live, "PUT", base, json={"key": "K", "value": ""}, expect=422)
    await call(live, "PUT", base, json={"key": "K", "value": "v", "extra": 1}, expect=422)
    await call(live, "DELETE", f"{base}/..%2Fx", expect=400)
    await call(live, "DELETE", f"{base}/API_KEY")
    await call(live, "DELETE", f"{base}/API_KEY", expect=404)
    assert (await call(live, "GET", base))["results"] == []
    log = live.log()
    assert "audit: secret company.team/API_KEY set" in log
    assert "audit: secret company.team/API_KEY deleted" in log
    assert VALUE not in log


async def test_secrets_need_admin_and_the_namespace(live: LiveServer) -> None:
    base = "/namespaces/company.team/secrets"
    editor = await call(live, "POST", "/tokens", expect=201, json={"name": "ed", "role": "editor"})
    await call(live, "GET", base, token=editor["token"], expect=403)
    await call(live, "PUT", base, json={"key": "K", "value": "v"}, token=editor["token"],
               expect=403)  # fmt: skip
    other = await call(
        live, "POST", "/tokens", expect=201,
        json={"name": "other-admin", "role": "admin", "namespace": "company.other"},
    )  # fmt: skip
    await call(live, "GET", base, token=other["token"], expect=404)
    await call(live, "PUT", base, json={"key": "K", "value": "v"}, token=other["token"],
               expect=404)  # fmt: skip
    await call(live, "DELETE", f"{base}/K", token=other["token"], expect=404)
    own = "/namespaces/company.other.sub/secrets"
    await call(live, "PUT", own, json={"key": "K", "value": "v"}, token=other["token"])
    assert (await call(live, "GET", own, token=other["token"]))["total"] == 1


async def test_plugin_types_with_schema_and_markdown(live: LiveServer) -> None:
    types = await call(live, "GET", "/plugins/types")
    names = [t["cls"] for t in types["results"]]
    assert "plait.core.Log" in names
    assert names == sorted(names)
    doc = await call(live, "GET", "/plugins/plait.core.Log")
    assert doc["kind"] == "task"
    assert doc["schema"]["properties"]["message"]
    cli = await asyncio.to_thread(plait, live, "plugins", "doc", "plait.core.Log")
    assert doc["markdown"].strip() == cli.strip()
    alias = await call(live, "GET", "/plugins/io.kestra.plugin.core.log.Log")
    assert alias["cls"] == "plait.core.Log"
    missing = await call(live, "GET", "/plugins/plait.core.Lgo", expect=404)
    assert "plait.core.Log" in missing["message"]
