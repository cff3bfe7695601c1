"""What a blueprint needs to run here: its plugins, and a version in the range asked for.

Used by flow validation (a Subflow naming a blueprint) and by the blueprints catalogue.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from plait_sdk import Blueprint

from plait.plugins._registry import TypeRegistry


def unknown_blueprint(registry: TypeRegistry, blueprint_id: str) -> str:
    close = difflib.get_close_matches(blueprint_id, list(registry.blueprints), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else "; see `plait blueprints list`"
    return f"unknown blueprint '{blueprint_id}'{hint}"


def installed(registry: TypeRegistry) -> dict[str, str]:
    """Distribution -> version of every plugin that registered a type (the loaded ones)."""
    return {i.origin.distribution: i.origin.version for i in registry}


def requirement_problems(blueprint: Blueprint, have: Mapping[str, str]) -> list[str]:
    """What is missing for ``blueprint`` to run here, each saying what to install."""
    problems = []
    for dist, minimum in sorted(blueprint.plugins.items()):
        current = have.get(dist)
        if current is None:
            problems.append(
                f"blueprint {blueprint.id} needs the plugin {dist}>={minimum}, which is not "
                f"installed: pip install '{dist}>={minimum}'"
            )
            continue
        try:
            too_old = Version(current) < Version(minimum)
        except InvalidVersion:
            too_old = False  # a local build ("0+unknown"): nothing to compare
        if too_old:
            problems.append(
                f"blueprint {blueprint.id} needs {dist}>={minimum} but {current} is installed: "
                f"pip install --upgrade '{dist}>={minimum}'"
            )
    return problems


def version_problem(blueprint: Blueprint, wanted: str | None) -> str | None:
    """Why ``blueprint`` does not satisfy the range ``wanted`` (None when it does)."""
    if wanted is None:
        return None
    try:
        spec = SpecifierSet(wanted)
    except InvalidSpecifier:
        return f"{wanted!r} is not a version range such as '>=1.0,<2'"
    if Version(blueprint.version) in spec:
        return None
    return (
        f"blueprint {blueprint.id} is version {blueprint.version}, outside the range {wanted} "
        "asked for: install a Plait (or plugin) release shipping a matching version, or change "
        "the range"
    )
