"""Finding packages in a catalogue file: ``plait plugins search``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pydantic
from plait_sdk import UserError

from plait.catalogue._model import Catalogue, CataloguePackage

ENV_CATALOGUE = "PLAIT_CATALOGUE"
CATALOGUE_FILE = "catalogue.json"
#: Package data of an installed wheel (the sdist copies registry/catalogue.json there, see
#: core/pyproject.toml): plait/catalogue/_search.py -> plait/_library/catalogue.json.
PACKAGED_CATALOGUE = Path(__file__).resolve().parent.parent / "_library" / CATALOGUE_FILE
#: A source checkout (editable install): core/src/plait/catalogue/_search.py -> the repository.
CHECKOUT_CATALOGUE = Path(__file__).resolve().parents[4] / "registry" / CATALOGUE_FILE


def default_catalogue_path() -> Path | None:
    """``$PLAIT_CATALOGUE``, else the catalogue shipped in the ``plait`` wheel as package data,
    else ``registry/catalogue.json`` of the source checkout Plait runs from; ``None`` when there
    is none."""
    configured = os.environ.get(ENV_CATALOGUE)
    if configured:
        return Path(configured)
    for candidate in (PACKAGED_CATALOGUE, CHECKOUT_CATALOGUE):
        if candidate.is_file():
            return candidate
    return None


def load_catalogue(path: Path | None) -> Catalogue:
    """Read and validate a catalogue file; a clear :class:`UserError` when it is not one."""
    path = path or default_catalogue_path()
    if path is None:
        raise UserError(
            f"no plugin catalogue here: pass --catalogue FILE or set {ENV_CATALOGUE} "
            "(an installed Plait has its own; this one was built without it)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read the catalogue: {error.strerror}", file=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"the catalogue is not JSON: {error}", file=str(path)) from None
    try:
        return Catalogue.model_validate(data)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(
            f"not a Plait plugin catalogue: {first['msg']}", file=str(path), field=where or None
        ) from None


@dataclass(frozen=True)
class Match:
    """A package that matched, and which of its types did."""

    package: CataloguePackage
    types: list[str]


def search(catalogue: Catalogue, word: str) -> list[Match]:
    """Packages whose name, summary, tags, type names, aliases or type summaries contain
    ``word`` (case-insensitive); every package for an empty word."""
    needle = word.strip().lower()
    found = []
    for package in catalogue.packages:
        types = sorted(
            {
                t.type
                for t in [*package.tasks, *package.triggers]
                if any(needle in text.lower() for text in (t.type, t.summary, *t.aliases))
            }
        )
        own = (package.name, package.summary, *package.tags)
        if types or any(needle in text.lower() for text in own):
            found.append(Match(package, types))
    return found
