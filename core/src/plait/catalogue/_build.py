"""Building the catalogue from what is installed: distribution metadata and registered types.

Nothing in it is written by hand: names, versions, summaries and tags come from each
distribution's metadata (``pyproject.toml``), the plugin-API range from its hook module, and
the types, aliases and schemas from what its plugins register.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from collections import defaultdict

from plait_sdk import PLUGIN_API_VERSION, type_schema

from plait.catalogue._model import (
    CATALOGUE_VERSION,
    Catalogue,
    CatalogueBlueprint,
    CataloguePackage,
    CatalogueType,
)
from plait.plugins import PluginHost, PluginRecord, TypeInfo

SCHEMA_FILE = "catalogue.schema.json"


class CatalogueError(Exception):
    """A plugin of the environment failed to load, so the catalogue would be incomplete."""


def build_catalogue(host: PluginHost) -> Catalogue:
    """The catalogue of every distribution whose plugins ``host`` loaded (all must be ok)."""
    broken = [r for r in host.records if r.status != "ok"]
    if broken:
        details = "; ".join(f"{r.distribution} ({r.name}): {', '.join(r.errors)}" for r in broken)
        raise CatalogueError(f"plugins failed to load: {details}")
    records: dict[str, list[PluginRecord]] = defaultdict(list)
    for record in host.records:
        records[record.distribution].append(record)
    types: dict[str, list[TypeInfo]] = defaultdict(list)
    for info in host.registry.all_versions():
        types[info.origin.distribution].append(info)
    offered: dict[str, list[str]] = defaultdict(list)
    blueprints = []
    for blueprint, origin in sorted(host.blueprints.values(), key=lambda b: b[0].id):
        offered[origin.distribution].append(blueprint.id)
        blueprints.append(
            CatalogueBlueprint(
                id=blueprint.id,
                title=blueprint.title,
                description=blueprint.description,
                tags=list(blueprint.tags),
                package=origin.distribution,
                path=f"blueprints/{blueprint.id}" if origin.plugin == "core" else None,
            )
        )
    packages = [
        _package(dist, records[dist], types[dist], offered[dist]) for dist in sorted(records)
    ]
    return Catalogue(
        schema_ref=SCHEMA_FILE,
        catalogue_version=CATALOGUE_VERSION,
        plugin_api=PLUGIN_API_VERSION,
        packages=packages,
        blueprints=blueprints,
    )


def _package(
    dist: str, records: list[PluginRecord], infos: list[TypeInfo], blueprints: list[str]
) -> CataloguePackage:
    try:
        meta = importlib.metadata.metadata(dist)
    except importlib.metadata.PackageNotFoundError:
        raise CatalogueError(f"{dist}: no installed distribution metadata") from None
    apis = sorted({r.api for r in records if r.api is not None})
    infos = sorted(infos, key=lambda i: (i.kind, i.name, i.version))
    return CataloguePackage(
        name=meta["Name"],
        version=meta["Version"],
        summary=_field(meta, "Summary"),
        plugin_api=",".join(apis) if apis else None,
        plugins=sorted(r.name for r in records),
        tags=keywords(_field(meta, "Keywords")),
        tasks=[_type(i, infos) for i in infos if i.kind == "task"],
        triggers=[_type(i, infos) for i in infos if i.kind == "trigger"],
        blueprints=blueprints,
    )


def _field(meta: importlib.metadata.PackageMetadata, name: str) -> str:
    values = meta.get_all(name) or []
    return str(values[0]) if values else ""


def keywords(field: str | None) -> list[str]:
    """A ``Keywords`` metadata field (comma- or space-separated, as backends write it)."""
    if not field:
        return []
    return sorted({k for k in re.split(r"[,\s]+", field) if k})


def _type(info: TypeInfo, infos: list[TypeInfo]) -> CatalogueType:
    latest = max(i.version for i in infos if i.name == info.name)
    doc = (inspect.getdoc(info.cls) or "").strip().splitlines()
    return CatalogueType(
        type=info.name,
        kind=info.kind,
        version=info.version,
        latest=info.version == latest,
        aliases=list(info.aliases),
        summary=doc[0].rstrip(".") if doc else "",
        type_schema=type_schema(info.cls),
    )
