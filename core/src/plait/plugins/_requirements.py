"""What a blueprint needs to run here: its plugins, and a version in the range asked for.

Used by flow validation (a Subflow naming a blueprint) and by the blueprints catalogue.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from plait_sdk import Blueprint, UserError

from plait.plugins._registry import TypeRegistry
from plait.safeyaml import safe_load


def unknown_blueprint(registry: TypeRegistry, blueprint_id: str) -> str:
    close = difflib.get_close_matches(blueprint_id, list(registry.blueprints), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else "; see `plait blueprints list`"
    return f"unknown blueprint '{blueprint_id}'{hint}"


def installed(registry: TypeRegistry) -> dict[str, str]:
    """Distribution -> version of every plugin that registered a type (the loaded ones)."""
    return {i.origin.distribution: i.origin.version for i in registry}


def needed_plugins(blueprint: Blueprint, registry: TypeRegistry) -> dict[str, tuple[str, str]]:
    """Distribution -> (minimum version, the blueprint that needs it) for ``blueprint`` and,
    transitively, every installed blueprint it calls as a subflow (``blueprint: <id>``) with the
    distribution shipping that one: a blueprint whose metadata forgets a plugin of a blueprint
    it calls still gets the missing one named before it runs."""
    needs: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    pending = [blueprint]
    while pending:
        current = pending.pop()
        if current.id in seen:
            continue  # a cycle of blueprints calling each other
        seen.add(current.id)
        for dist, minimum in current.plugins.items():
            _raise_to(needs, dist, minimum, current.id)
        for called_id in sorted(_called_blueprints(current)):
            found = registry.blueprints.get(called_id)
            if found is None:
                continue  # its flow's own validation reports an unknown blueprint
            called, origin = found
            if origin.distribution not in {"plait", "-"}:  # "-": a module given, no distribution
                _raise_to(needs, origin.distribution, origin.version, current.id)
            pending.append(called)
    return needs


def requirement_problems(
    blueprint: Blueprint, have: Mapping[str, str], registry: TypeRegistry | None = None
) -> list[str]:
    """What is missing for ``blueprint`` to run here, each saying what to install; with the
    ``registry``, also what the blueprints it calls as subflows need."""
    if registry is None:
        needs = {dist: (minimum, blueprint.id) for dist, minimum in blueprint.plugins.items()}
    else:
        needs = needed_plugins(blueprint, registry)
    problems = []
    for dist, (minimum, by) in sorted(needs.items()):
        via = "" if by == blueprint.id else f" (for the blueprint {by} it calls)"
        current = have.get(dist)
        if current is None:
            problems.append(
                f"blueprint {blueprint.id} needs the plugin {dist}>={minimum}{via}, which is not "
                f"installed: pip install '{dist}>={minimum}'"
            )
            continue
        try:
            too_old = Version(current) < Version(minimum)
        except InvalidVersion:
            too_old = False  # a local build ("0+unknown"): nothing to compare
        if too_old:
            problems.append(
                f"blueprint {blueprint.id} needs {dist}>={minimum}{via} but {current} is "
                f"installed: pip install --upgrade '{dist}>={minimum}'"
            )
    return problems


def _raise_to(needs: dict[str, tuple[str, str]], dist: str, minimum: str, by: str) -> None:
    """Keep the highest minimum asked for ``dist`` (the first one when versions do not parse)."""
    known = needs.get(dist)
    if known is None:
        needs[dist] = (minimum, by)
        return
    try:
        higher = Version(minimum) > Version(known[0])
    except InvalidVersion:
        higher = False
    if higher:
        needs[dist] = (minimum, by)


def _called_blueprints(blueprint: Blueprint) -> set[str]:
    """The ids of the blueprints ``blueprint``'s flow names in a task (``blueprint: <id>``
    beside a ``type``), at any depth of flowable tasks, errors and finally."""
    try:
        data = safe_load(blueprint.flow)
    except (yaml.YAMLError, UserError):
        return set()  # the blueprint's own tests report a broken flow
    found: set[str] = set()
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target = node.get("blueprint")
            if isinstance(target, str) and isinstance(node.get("type"), str):
                found.add(target)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


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
