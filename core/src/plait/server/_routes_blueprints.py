"""The blueprint catalogue, for the UI: the list (searchable) and one blueprint in full."""

from __future__ import annotations

from plait_sdk import Model, UserError
from pydantic import Field

from plait.blueprints import BlueprintDetail, BlueprintList, describe, find, search, summarize
from plait.server._api import Api, Call
from plait.server._errors import not_found
from plait.server._hub import Hub


class BlueprintQuery(Model):
    tag: str | None = Field(None, description="Only blueprints with this tag.")
    q: str | None = Field(None, description="A word of the id, title, tags or description.")


def install(api: Api, hub: Hub) -> None:
    @api.route(
        "GET",
        "/api/v1/blueprints",
        summary="The blueprint catalogue (the core's library and the installed plugins').",
        role="viewer",
        tag="blueprints",
        query=BlueprintQuery,
        response=BlueprintList,
    )
    async def list_blueprints(call: Call) -> BlueprintList:
        query: BlueprintQuery = call.query
        found = [summarize(e) for e in search(hub.runner.host.registry, query.tag, query.q)]
        return BlueprintList(results=found, total=len(found))

    @api.route(
        "GET",
        "/api/v1/blueprints/{blueprintId}",
        summary="One blueprint: description, plugins, typed inputs and outputs, example, flow.",
        role="viewer",
        tag="blueprints",
        response=BlueprintDetail,
    )
    async def get_blueprint(call: Call) -> BlueprintDetail:
        blueprint_id = call.match("blueprintId")
        try:
            return describe(find(hub.runner.host.registry, blueprint_id))
        except UserError:
            raise not_found(f"blueprint {blueprint_id}") from None
