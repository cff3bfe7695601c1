"""Where the core's own blueprint library is: ``plait/_library/blueprints``, a symbolic link to
the repository's ``registry/blueprints`` in a checkout, whose files the sdist and the wheel copy."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from plait_sdk import Blueprint

from plait.plugins import load_blueprints

#: The package data (in a checkout: the link to registry/blueprints).
_PACKAGED = Path(__file__).resolve().parent.parent / "_library" / "blueprints"
#: In a checkout: core/src/plait/blueprints -> the repository root.
_CHECKOUT = Path(__file__).resolve().parents[4] / "registry" / "blueprints"


def library_path() -> Path:
    """The directory of the core's blueprints (``<id>/blueprint.yaml`` + ``flow.yaml``)."""
    return _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT


@cache
def library() -> tuple[Blueprint, ...]:
    """The core's blueprints, read once per process."""
    return tuple(load_blueprints(library_path()))
