"""Blueprints: ready flows with metadata, deployed whole or called as a subflow."""

from plait.blueprints._catalogue import (
    Entry,
    describe,
    entries,
    find,
    inputs_of,
    instantiate,
    search,
    subflow_flow_id,
    subflow_source,
    summarize,
)
from plait.blueprints._library import library, library_path
from plait.blueprints._load import load_blueprint, load_blueprints, load_blueprints_each
from plait.blueprints._models import (
    BlueprintDetail,
    BlueprintInput,
    BlueprintList,
    BlueprintOutput,
    BlueprintSummary,
)

__all__ = [
    "BlueprintDetail",
    "BlueprintInput",
    "BlueprintList",
    "BlueprintOutput",
    "BlueprintSummary",
    "Entry",
    "describe",
    "entries",
    "find",
    "inputs_of",
    "instantiate",
    "library",
    "library_path",
    "load_blueprint",
    "load_blueprints",
    "load_blueprints_each",
    "search",
    "subflow_flow_id",
    "subflow_source",
    "summarize",
]
