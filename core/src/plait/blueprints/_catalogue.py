"""The catalogue: every blueprint the core and the installed plugins registered."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import yaml
from plait_sdk import Blueprint, UserError

from plait.blueprints._models import (
    BlueprintDetail,
    BlueprintInput,
    BlueprintOutput,
    BlueprintSummary,
)
from plait.flows import ID_PATTERN, NAMESPACE_PATTERN, Input, safe_load
from plait.plugins import Origin, TypeRegistry, unknown_blueprint

#: The flow id a blueprint runs as when a Subflow names it (in the calling flow's namespace,
#: so its secrets and KV pairs are that namespace's): ``bp_etl_http-to-postgres``. Blueprint
#: ids have no ``_``, so the mapping is one to one.
SUBFLOW_PREFIX = "bp_"
#: Written as a Webhook trigger's key in a blueprint; replaced by a random key on each use.
WEBHOOK_KEY_PLACEHOLDER = "BLUEPRINT_WEBHOOK_KEY_PLACEHOLDER"


@dataclass(frozen=True)
class Entry:
    blueprint: Blueprint
    origin: Origin


def entries(registry: TypeRegistry) -> list[Entry]:
    """The catalogue, by id."""
    return [Entry(b, o) for _, (b, o) in sorted(registry.blueprints.items())]


def find(registry: TypeRegistry, blueprint_id: str) -> Entry:
    """The blueprint ``blueprint_id``; a :class:`UserError` with the closest ids otherwise."""
    found = registry.blueprints.get(blueprint_id)
    if found is None:
        raise UserError(unknown_blueprint(registry, blueprint_id))
    return Entry(*found)


def search(registry: TypeRegistry, tag: str | None = None, word: str | None = None) -> list[Entry]:
    """Blueprints with ``tag`` (exactly) and ``word`` in their id, title, tags or description."""
    found = []
    for entry in entries(registry):
        bp = entry.blueprint
        if tag is not None and tag.lower() not in (t.lower() for t in bp.tags):
            continue
        if word is not None:
            text = " ".join([bp.id, bp.title, bp.description, *bp.tags]).lower()
            if word.lower() not in text:
                continue
        found.append(entry)
    return found


def subflow_flow_id(blueprint_id: str) -> str:
    return SUBFLOW_PREFIX + blueprint_id.replace(".", "_")


def subflow_source(blueprint: Blueprint, namespace: str) -> str:
    """The flow a Subflow naming ``blueprint`` runs in ``namespace``: the blueprint's flow
    without its triggers (a subflow is started by its caller, never by a webhook or a
    schedule of its own), the same text each time so it is stored once per change."""
    data = flow_data(blueprint)
    data["id"], data["namespace"] = subflow_flow_id(blueprint.id), namespace
    data.pop("triggers", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def flow_data(blueprint: Blueprint) -> dict[str, Any]:
    data = safe_load(blueprint.flow)
    if not isinstance(data, dict):
        raise UserError(f"blueprint {blueprint.id}: its flow is not a mapping")
    return data


def inputs_of(blueprint: Blueprint) -> list[Input]:
    raw = flow_data(blueprint).get("inputs") or []
    return [Input.model_validate(item) for item in raw]


def describe(entry: Entry) -> BlueprintDetail:
    bp = entry.blueprint
    data = flow_data(bp)
    inputs = [
        BlueprintInput(
            id=i.id,
            type=i.type.value,
            description=i.description or "",
            required=i.required and i.defaults is None,
            defaults=i.defaults,
        )
        for i in inputs_of(bp)
    ]
    outputs = [
        BlueprintOutput(
            id=str(o.get("id")),
            type=str(o.get("type", "STRING")),
            description=o.get("description") or "",
        )
        for o in data.get("outputs") or []
        if isinstance(o, dict)
    ]
    return BlueprintDetail(
        **summarize(entry).model_dump(),
        description=bp.description.strip(),
        plugins=dict(bp.plugins),
        inputs=inputs,
        outputs=outputs,
        example=bp.example.strip(),
        flow=bp.flow,
    )


def summarize(entry: Entry) -> BlueprintSummary:
    bp = entry.blueprint
    first = bp.description.strip().split("\n\n", 1)[0]
    return BlueprintSummary(
        id=bp.id,
        title=bp.title,
        summary=" ".join(first.split()),
        tags=list(bp.tags),
        version=bp.version,
        distribution=entry.origin.distribution,
    )


_TOP_ID = re.compile(r"^id:[^\n]*$", re.MULTILINE)
_TOP_NAMESPACE = re.compile(r"^namespace:[^\n]*$", re.MULTILINE)


def instantiate(blueprint: Blueprint, namespace: str, flow_id: str | None = None) -> str:
    """The blueprint's flow YAML as a flow of ``namespace`` (and ``flow_id``), comments kept."""
    flow_id = flow_id or blueprint.id.split(".", 1)[1]
    if not re.match(NAMESPACE_PATTERN, namespace):
        raise UserError(
            f"invalid namespace {namespace!r}: lowercase words joined by '.' (company.team)"
        )
    if not re.match(ID_PATTERN, flow_id):
        raise UserError(f"invalid flow id {flow_id!r}: letters, digits, '_' and '-'")
    text = blueprint.flow
    if len(_TOP_ID.findall(text)) != 1 or len(_TOP_NAMESPACE.findall(text)) != 1:
        raise UserError(
            f"blueprint {blueprint.id}: its flow needs one top-level 'id:' and 'namespace:' line"
        )
    text = _TOP_ID.sub(lambda _m: f"id: {flow_id}", text, count=1)
    text = _TOP_NAMESPACE.sub(lambda _m: f"namespace: {namespace}", text, count=1)
    # A webhook key is a password: each deployed copy gets its own, never the published one.
    while WEBHOOK_KEY_PLACEHOLDER in text:
        text = text.replace(WEBHOOK_KEY_PLACEHOLDER, secrets.token_urlsafe(18), 1)
    return text
