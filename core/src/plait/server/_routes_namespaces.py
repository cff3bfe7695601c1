"""Namespaces, their KV store, and the installed plugins."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from plait_sdk import Model, UserError
from pydantic import Field

from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._models import Deleted, aware


class NamespaceList(Model):
    results: list[str]


class KVEntry(Model):
    key: str
    type: str
    value: Any = None
    expiration_date: datetime | None = None


class KVKey(Model):
    key: str
    type: str
    updated: datetime


class KVList(Model):
    results: list[KVKey]


class KVSet(Model):
    """A typed value (STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION, JSON; inferred when
    left out) with an optional time to live (ISO 8601 duration, such as PT1H)."""

    value: Any
    type: str | None = Field(None, pattern=r"^[A-Za-z]+$")
    ttl: timedelta | None = None


class PluginOut(Model):
    name: str
    module: str | None = None
    distribution: str | None = None
    version: str | None = None
    status: str
    errors: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)


class PluginList(Model):
    results: list[PluginOut]


_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


def install(api: Api, hub: Hub) -> None:
    def namespace_of(call: Call) -> str:
        namespace = check_id(call.match("namespace"), "namespace")
        if not call.principal.sees(namespace):
            raise not_found(f"namespace {namespace}")
        return namespace

    def key_of(call: Call) -> str:
        key = call.match("key")
        if not _KEY.match(key) or ".." in key:
            raise ApiError(400, f"invalid key {key!r}: letters, digits, '_', '-' and '.' only")
        return key

    def kv_store() -> Any:
        if hub.runner.kv is None:
            raise ApiError(404, "the KV store is not configured")
        return hub.runner.kv

    @api.route(
        "GET",
        "/api/v1/namespaces",
        summary="The namespaces that have flows (those the token can see).",
        role="viewer",
        tag="namespaces",
        response=NamespaceList,
    )
    async def list_namespaces(call: Call) -> NamespaceList:
        found = {f.namespace for f in await hub.runner.repo.list_flows()}
        return NamespaceList(results=sorted(n for n in found if call.principal.sees(n)))

    @api.route(
        "GET",
        "/api/v1/namespaces/{namespace}/kv",
        summary="The live keys of a namespace's KV store.",
        role="viewer",
        tag="kv",
        response=KVList,
    )
    async def list_kv(call: Call) -> KVList:
        namespace = namespace_of(call)
        keys = await kv_store().keys(namespace)
        return KVList(results=[KVKey(key=k, type=t, updated=aware(u)) for k, t, u in keys])

    @api.route(
        "GET",
        "/api/v1/namespaces/{namespace}/kv/{key}",
        summary="A KV value with its type.",
        role="viewer",
        tag="kv",
        response=KVEntry,
    )
    async def get_kv(call: Call) -> KVEntry:
        return await read_kv(namespace_of(call), key_of(call))

    async def read_kv(namespace: str, key: str) -> KVEntry:
        found = await kv_store().entry(namespace, key)
        if found is None:
            raise not_found(f"key {key} in namespace {namespace}")
        kind, value, expires = found
        if not isinstance(value, str | int | float | bool | list | dict | type(None)):
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return KVEntry(
            key=key, type=kind, value=value, expiration_date=aware(expires) if expires else None
        )

    @api.route(
        "PUT",
        "/api/v1/namespaces/{namespace}/kv/{key}",
        summary="Set a KV value (typed, with an optional TTL).",
        role="editor",
        tag="kv",
        body=KVSet,
        response=KVEntry,
    )
    async def set_kv(call: Call) -> KVEntry:
        namespace, key = namespace_of(call), key_of(call)
        body: KVSet = call.body
        try:
            await kv_store().set(namespace, key, body.value, type=body.type, ttl=body.ttl)
        except UserError as error:
            raise ApiError(422, str(error), problems=[str(error)]) from None
        return await read_kv(namespace, key)

    @api.route(
        "DELETE",
        "/api/v1/namespaces/{namespace}/kv/{key}",
        summary="Delete a KV value.",
        role="editor",
        tag="kv",
        response=Deleted,
    )
    async def delete_kv(call: Call) -> Deleted:
        namespace, key = namespace_of(call), key_of(call)
        if not await kv_store().delete(namespace, key):
            raise not_found(f"key {key} in namespace {namespace}")
        return Deleted()

    @api.route(
        "GET",
        "/api/v1/plugins",
        summary="Installed plugins with their status and types (as `plait plugins list`).",
        role="viewer",
        tag="plugins",
        response=PluginList,
    )
    async def list_plugins(call: Call) -> PluginList:
        return PluginList(
            results=[
                PluginOut(
                    name=r.name,
                    module=r.module,
                    distribution=r.distribution,
                    version=r.version,
                    status=r.status,
                    errors=list(r.errors),
                    types=list(r.types),
                )
                for r in hub.runner.host.records
            ]
        )
