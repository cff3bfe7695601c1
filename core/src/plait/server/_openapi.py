"""``/api/v1/openapi.json``: OpenAPI 3.1 built from the operations' declared models."""

from __future__ import annotations

import re
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from plait import __version__
from plait.server._api import Operation
from plait.server._models import ErrorBody, Health

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{(\w+)\}")
_REASONS = {
    400: "Bad request",
    401: "No valid token",
    403: "Role too low",
    404: "Not found (or outside the token's namespace)",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported Content-Type",
    422: "Invalid content",
    503: "Shutting down",
}


def openapi(operations: list[Operation], public: list[dict[str, Any]]) -> dict[str, Any]:
    models: set[type[pydantic.BaseModel]] = {ErrorBody, Health}
    for op in operations:
        for model in (op.body, op.response):
            if model is not None:
                models.add(model)
    keyed: list[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = [
        (m, "serialization") for m in models
    ] + [(op.body, "validation") for op in operations if op.body is not None]
    refs, defs = models_json_schema(
        sorted(set(keyed), key=lambda k: (k[0].__name__, k[1])),
        by_alias=True,
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item = paths.setdefault(op.path, {})
        item[op.method.lower()] = _operation(op, refs)
    for extra in public:
        paths.setdefault(extra["path"], {})[extra.get("method", "get")] = extra["operation"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plait API",
            "version": __version__,
            "description": "The Plait hub server. Every operation needs `Authorization: Bearer "
            "<token>` except /health, /ready and /metrics.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "plait_session"},
            },
        },
        "security": [{"token": []}, {"basic": []}, {"session": []}],
    }


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "x-plait-role": op.role,
        **({"security": []} if op.public else {}),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
            for name in _PARAM.findall(op.path)
        ],
    }
    if op.query is not None:
        schema = op.query.model_json_schema(by_alias=True, mode="validation")
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            out["parameters"].append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": _inline(prop, schema),
                    **({"explode": True} if prop.get("type") == "array" else {}),
                }
            )
    if op.body_kind == "yaml":
        out["requestBody"] = {
            "required": True,
            "content": {"application/x-yaml": {"schema": {"type": "string"}}},
        }
    elif op.body_kind == "file":
        out["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"fileContent": {"type": "string", "format": "binary"}},
                        "required": ["fileContent"],
                    }
                }
            },
        }
    elif op.body is not None:
        ref = refs[(op.body, "validation")]
        content: dict[str, Any] = {"application/json": {"schema": ref}}
        if op.body_kind == "inputs":
            content["multipart/form-data"] = {
                "schema": {"type": "object", "additionalProperties": True}
            }
        needed = op.body_kind != "inputs"
        out["requestBody"] = {"required": needed, "content": content}
    responses: dict[str, Any] = {}
    if op.response is not None:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {op.produces: {"schema": refs[(op.response, "serialization")]}},
        }
    elif op.produces == "text/event-stream":
        event = {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("id", "event", "data", "retry")},
        }
        responses[str(op.status)] = {
            "description": "Server-Sent Events: one log line (JSON) per `message` event, then "
            "an `end` event with the execution's final state.",
            "content": {op.produces: {"schema": event}},
        }
    else:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {op.produces: {"schema": {"type": "string"}}},
        }
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    for status in sorted({*op.errors, 401, 403}):
        responses[str(status)] = {"description": _REASONS.get(status, "Error"), "content": error}
    out["responses"] = responses
    return out


def _path_schema(name: str) -> dict[str, Any]:
    return {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$"}


def _inline(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema with local ``$defs`` references resolved (enums)."""
    defs = schema.get("$defs", {})

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return dict(resolve(prop))
