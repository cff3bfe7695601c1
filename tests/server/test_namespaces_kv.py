"""Namespaces, the KV store and plugins over the API."""

from __future__ import annotations

from live_server import LiveServer, call


async def test_kv_set_get_list_delete_with_types_and_scope(live: LiveServer) -> None:
    base = "/namespaces/company.team/kv"
    made = await call(live, "PUT", f"{base}/cursor", json={"value": 42})
    assert (made["type"], made["value"]) == ("NUMBER", 42)
    typed = await call(live, "PUT", f"{base}/when", json={"value": "2025-01-31", "type": "DATE"})
    assert typed["type"] == "DATE"
    short = await call(live, "PUT", f"{base}/tmp", json={"value": "x", "ttl": "PT1H"})
    assert short["expirationDate"] is not None
    listed = await call(live, "GET", base)
    assert [k["key"] for k in listed["results"]] == ["cursor", "tmp", "when"]
    assert (await call(live, "GET", f"{base}/cursor"))["value"] == 42
    bad = await call(live, "PUT", f"{base}/n", json={"value": "abc", "type": "NUMBER"}, expect=422)
    assert "NUMBER" in bad["message"] or "number" in bad["message"]
    await call(live, "PUT", f"{base}/n", json={"value": 1, "type": "NOPE"}, expect=422)
    await call(live, "GET", f"{base}/..%2Fx", expect=400)
    await call(live, "DELETE", f"{base}/cursor")
    await call(live, "GET", f"{base}/cursor", expect=404)
    scoped = await call(
        live, "POST", "/tokens", expect=201,
        json={"name": "kv", "role": "editor", "namespace": "company.other"},
    )  # fmt: skip
    await call(live, "GET", f"{base}/when", token=scoped["token"], expect=404)
    await call(live, "PUT", f"{base}/x", json={"value": 1}, token=scoped["token"], expect=404)


async def test_namespaces_and_plugins(live: LiveServer) -> None:
    namespaces = await call(live, "GET", "/namespaces")
    assert "examples" in namespaces["results"]
    plugins = await call(live, "GET", "/plugins")
    core = next(p for p in plugins["results"] if "plait.core.Log" in p["types"])
    assert core["status"] == "ok"
