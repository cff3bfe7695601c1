"""The OpenAPI document comes from the handlers: every route is in it, every $ref resolves."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from live_server import LiveServer


async def test_openapi_covers_every_route_and_resolves(live: LiveServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(live.api + "/openapi.json") as response,
    ):
        assert response.status == 200
        doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    for expected in [
        ("POST", "/api/v1/flows"),
        ("PUT", "/api/v1/flows/{namespace}/{id}"),
        ("GET", "/api/v1/flows/{namespace}/{id}"),
        ("POST", "/api/v1/executions/{namespace}/{id}"),
        ("GET", "/api/v1/executions/{executionId}"),
        ("GET", "/api/v1/executions/search"),
        ("POST", "/api/v1/executions/{executionId}/pause"),
        ("POST", "/api/v1/executions/{executionId}/resume"),
        ("GET", "/api/v1/logs/{executionId}"),
        ("GET", "/api/v1/logs/{executionId}/follow"),
        ("GET", "/health"),
        ("GET", "/metrics"),
    ]:
        assert expected in operations, expected
    schemas = doc["components"]["schemas"]
    assert {"ExecutionOut", "FlowOut", "ErrorBody", "LogLine"} <= set(schemas)
    assert "flowId" in schemas["ExecutionOut"]["properties"]  # Kestra's camelCase

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
            return found + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in schemas, ref
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    json.dumps(doc)
