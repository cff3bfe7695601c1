"""The catalogue's shape: pydantic models that are also the source of its JSON Schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CATALOGUE_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CatalogueType(_Strict):
    """One version of a task or trigger type."""

    type: str = Field(description="The canonical type name, e.g. plait.http.Request.")
    kind: Literal["task", "trigger"]
    version: int = Field(ge=1, description="The type version (`version: N` in a flow).")
    latest: bool = Field(description="Whether this is the type's latest version.")
    aliases: list[str] = Field(description="Other names of the type, e.g. Kestra's.")
    summary: str = Field(description="The first line of the type's documentation.")
    type_schema: dict[str, Any] = Field(
        alias="schema", description="The type's JSON Schema, as `plait plugins doc --json`."
    )


class CatalogueBlueprint(_Strict):
    """A flow blueprint, listed under the package that ships it: the core's library
    (``registry/blueprints/<id>/``) or a connector (through ``register_blueprints``)."""

    id: str
    title: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    package: str | None = Field(
        default=None,
        description="The distribution shipping it: `plait` for the core's library, a "
        "connector's distribution for the blueprints it registers for its own service.",
    )
    path: str | None = Field(
        default=None,
        description="Its folder under registry/ for the core's library; null for one a "
        "connector ships in its package.",
    )


class CataloguePackage(_Strict):
    """One installable distribution of plugins."""

    name: str = Field(description="The distribution name, as given to `plait plugins install`.")
    version: str
    summary: str
    plugin_api: str | None = Field(
        alias="pluginApi",
        description="The PLAIT_PLUGIN_API range its plugins declare (null: undeclared).",
    )
    plugins: list[str] = Field(description="Its entry points in the plait.plugins group.")
    tags: list[str] = Field(description="The distribution's keywords.")
    tasks: list[CatalogueType]
    triggers: list[CatalogueType]
    blueprints: list[str] = Field(description="Ids of the blueprints it offers.")


class Catalogue(_Strict):
    """The catalogue of plugin packages: what `plait plugins search` reads."""

    schema_ref: str | None = Field(default=None, alias="$schema")
    catalogue_version: Literal[1] = Field(alias="catalogueVersion")
    plugin_api: str = Field(
        alias="pluginApi", description="The plugin API of the SDK that generated the catalogue."
    )
    packages: list[CataloguePackage]
    blueprints: list[CatalogueBlueprint]

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


def catalogue_json_schema() -> dict[str, Any]:
    """The catalogue's JSON Schema (written to ``registry/catalogue.schema.json``)."""
    schema = Catalogue.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "catalogue.schema.json",
        **schema,
    }
