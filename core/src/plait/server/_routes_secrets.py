"""Secrets of a namespace (names and metadata only: a value never leaves the server) and the
reference of every plugin type (its JSON Schema and generated markdown)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from plait_sdk import Model, UserError, type_schema
from pydantic import Field

from plait.reference import type_markdown
from plait.secrets import SecretStore, check_name
from plait.server._api import Api, Call, check_id
from plait.server._errors import ApiError, not_found
from plait.server._hub import Hub
from plait.server._models import Deleted, aware

log = logging.getLogger("plait.server")


class SecretMeta(Model):
    """What the API shows of a secret: never its value."""

    key: str
    namespace: str
    key_id: str = Field(description="The id of the master key that sealed it.")
    updated: datetime


class SecretList(Model):
    read_only: bool = False
    results: list[SecretMeta]
    total: int


class SecretSet(Model):
    """Create or replace a secret; the value is sealed at once and can never be read back."""

    key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    value: str = Field(min_length=1)


class PluginType(Model):
    """A task or trigger type: its JSON Schema and the markdown reference generated from it."""

    cls: str
    kind: str
    distribution: str
    aliases: list[str] = Field(default_factory=list)
    markdown: str
    schema_: dict[str, Any] = Field(alias="schema")


class PluginTypeSummary(Model):
    cls: str
    kind: str
    distribution: str


class PluginTypeList(Model):
    results: list[PluginTypeSummary]


def install(api: Api, hub: Hub) -> None:
    def namespace_of(call: Call) -> str:
        namespace = check_id(call.match("namespace"), "namespace")
        if not call.principal.sees(namespace):
            raise not_found(f"namespace {namespace}")
        return namespace

    def store() -> SecretStore:
        return SecretStore(hub.repo, hub.runner.key_ring)

    def meta(namespace: str, name: str, key_id: str, updated: datetime) -> SecretMeta:
        return SecretMeta(key=name, namespace=namespace, key_id=key_id, updated=aware(updated))

    @api.route(
        "GET",
        "/api/v1/namespaces/{namespace}/secrets",
        summary="Names and metadata of the secrets of a namespace (never their values).",
        role="admin",
        tag="secrets",
        response=SecretList,
    )
    async def list_secrets(call: Call) -> SecretList:
        namespace = namespace_of(call)
        found = [
            meta(i.namespace, i.name, i.key_id, i.updated)
            for i in await store().names(namespace)
            if i.namespace == namespace
        ]
        return SecretList(results=found, total=len(found))

    @api.route(
        "PUT",
        "/api/v1/namespaces/{namespace}/secrets",
        summary="Create or replace a secret (the value is encrypted at once; the answer holds "
        "only its metadata).",
        role="admin",
        tag="secrets",
        body=SecretSet,
        response=SecretMeta,
    )
    async def set_secret(call: Call) -> SecretMeta:
        namespace = namespace_of(call)
        body: SecretSet = call.body
        secrets = store()
        try:
            await secrets.set(namespace, body.key, body.value.encode())
        except UserError as error:
            raise ApiError(422, str(error), problems=[str(error)]) from None
        log.info(
            "audit: secret %s/%s set (%d bytes, encrypted) by token %s (%s)",
            namespace, body.key, len(body.value.encode()), call.principal.name,
            call.principal.token_id,
        )  # fmt: skip
        for info in await secrets.names(namespace):
            if info.namespace == namespace and info.name == body.key:
                return meta(info.namespace, info.name, info.key_id, info.updated)
        raise not_found(f"secret {body.key} in namespace {namespace}")  # deleted meanwhile

    @api.route(
        "DELETE",
        "/api/v1/namespaces/{namespace}/secrets/{key}",
        summary="Delete a secret.",
        role="admin",
        tag="secrets",
        response=Deleted,
    )
    async def delete_secret(call: Call) -> Deleted:
        namespace = namespace_of(call)
        key = call.match("key")
        try:
            check_name(key)
        except UserError as error:
            raise ApiError(400, str(error)) from None
        if not await store().delete(namespace, key):
            raise not_found(f"secret {key} in namespace {namespace}")
        log.info(
            "audit: secret %s/%s deleted by token %s (%s)",
            namespace, key, call.principal.name, call.principal.token_id,
        )  # fmt: skip
        return Deleted()

    @api.route(
        "GET",
        "/api/v1/plugins/types",
        summary="Every task and trigger type installed.",
        role="viewer",
        tag="plugins",
        response=PluginTypeList,
    )
    async def list_plugin_types(call: Call) -> PluginTypeList:
        registry = hub.runner.host.registry
        return PluginTypeList(
            results=[
                PluginTypeSummary(cls=i.name, kind=i.kind, distribution=i.origin.distribution)
                for i in registry
            ]
        )

    @api.route(
        "GET",
        "/api/v1/plugins/{cls}",
        summary="A type's JSON Schema and markdown reference (as `plait plugins doc`).",
        role="viewer",
        tag="plugins",
        response=PluginType,
    )
    async def get_plugin_type(call: Call) -> PluginType:
        name = call.match("cls")
        registry = hub.runner.host.registry
        info = registry.resolve(name)
        if info is None:
            hint = registry.suggest(name)
            raise not_found(f"type {name!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        return PluginType(
            cls=info.name,
            kind=info.kind,
            distribution=info.origin.distribution,
            aliases=list(info.aliases),
            markdown=type_markdown(info),
            schema=type_schema(info.cls),
        )
