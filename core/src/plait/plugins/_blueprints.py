"""Reading blueprints from directories: ``<root>/<id>/blueprint.yaml`` and ``flow.yaml``.

The core's library is read so, and so is a directory a connector registers with
``register(Path(...))`` (its own blueprints, shipped as package data). YAML is read with the
guarded loader of flow files (plait.safeyaml.safe_load), within the flow-file limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import yaml
from plait_sdk import Blueprint, UserError, ValidationError

from plait.safeyaml import safe_load

METADATA_FILE = "blueprint.yaml"
FLOW_FILE = "flow.yaml"
#: A blueprint's two files together stay well under this (a flow file's own limit is larger).
MAX_FILE_BYTES = 1 << 20


def load_blueprint(directory: Path) -> Blueprint:
    """The blueprint of one directory; :class:`ValidationError` names the file and field."""
    meta_file = directory / METADATA_FILE
    meta = _yaml_mapping(meta_file)
    if "flow" in meta:
        raise UserError("the flow is flow.yaml beside it, not a key", file=str(meta_file))
    flow = _read(directory / FLOW_FILE)
    try:
        blueprint = Blueprint.model_validate({**meta, "flow": flow})
    except pydantic.ValidationError as error:
        raise ValidationError(
            [
                UserError(
                    problem["msg"],
                    file=str(meta_file),
                    field=".".join(str(p) for p in problem["loc"]) or None,
                )
                for problem in error.errors()
            ],
            file=str(meta_file),
        ) from None
    if blueprint.id != directory.name:
        raise UserError(
            f"the id {blueprint.id!r} differs from its directory's name {directory.name!r}",
            file=str(meta_file),
            field="id",
        )
    return blueprint


def load_blueprints(root: Path) -> list[Blueprint]:
    """Every blueprint under ``root`` (one per directory holding a blueprint.yaml), by id."""
    if not root.is_dir():
        return []
    return [
        load_blueprint(child)
        for child in sorted(root.iterdir())
        if child.is_dir() and (child / METADATA_FILE).is_file()
    ]


def load_blueprints_each(root: Path) -> tuple[list[Blueprint], list[UserError]]:
    """Every valid blueprint under ``root``, and the problem of each invalid one: a connector's
    broken blueprint is reported in its plugin's status and costs only that blueprint."""
    if not root.is_dir():
        return [], [UserError("not a directory of blueprints", file=str(root))]
    found: list[Blueprint] = []
    problems: list[UserError] = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith(("_", ".")):
            continue  # __pycache__ and the like, beside the blueprints in a package
        if not (child / METADATA_FILE).is_file():
            problems.append(UserError(f"no {METADATA_FILE}", file=str(child)))
            continue
        try:
            found.append(load_blueprint(child))
        except UserError as error:
            problems.append(error)
    return found, problems


def _read(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise UserError(f"cannot read it: {error.strerror}", file=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"larger than {MAX_FILE_BYTES} bytes", file=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", file=str(path)) from None


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = safe_load(_read(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise UserError(
            f"not valid YAML: {getattr(error, 'problem', None) or error}",
            file=str(path),
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        ) from None
    if not isinstance(data, dict):
        raise UserError("a blueprint's metadata is a mapping (id, title...)", file=str(path))
    return data
