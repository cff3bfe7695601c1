"""The plugin catalogue: generated from installed distributions, searched by ``plait plugins``."""

from plait.catalogue._build import CatalogueError, build_catalogue, keywords
from plait.catalogue._model import (
    CATALOGUE_VERSION,
    Catalogue,
    CatalogueBlueprint,
    CataloguePackage,
    CatalogueType,
    catalogue_json_schema,
)
from plait.catalogue._search import (
    ENV_CATALOGUE,
    Match,
    default_catalogue_path,
    load_catalogue,
    search,
)

__all__ = [
    "CATALOGUE_VERSION",
    "ENV_CATALOGUE",
    "Catalogue",
    "CatalogueBlueprint",
    "CatalogueError",
    "CataloguePackage",
    "CatalogueType",
    "Match",
    "build_catalogue",
    "catalogue_json_schema",
    "default_catalogue_path",
    "keywords",
    "load_catalogue",
    "search",
]
