"""What the CLI prints and the server serves about a blueprint (one model for both, and the
OpenAPI document)."""

from __future__ import annotations

from typing import Any

from plait_sdk import Model
from pydantic import Field


class BlueprintInput(Model):
    id: str
    type: str
    description: str = ""
    required: bool = True
    defaults: Any = None


class BlueprintOutput(Model):
    id: str
    type: str
    description: str = ""


class BlueprintSummary(Model):
    """One line of the catalogue."""

    id: str
    title: str
    summary: str
    """The first paragraph of the description."""
    tags: list[str] = Field(default_factory=list)
    version: str
    distribution: str
    """The distribution that contributed it (``plait`` for the core's library)."""


class BlueprintDetail(BlueprintSummary):
    """Everything about one blueprint, with its flow's YAML."""

    description: str
    plugins: dict[str, str] = Field(default_factory=dict)
    """Distribution -> minimum version, for every plugin its flow uses."""
    inputs: list[BlueprintInput] = Field(default_factory=list)
    outputs: list[BlueprintOutput] = Field(default_factory=list)
    example: str = ""
    """A Subflow task calling it."""
    flow: str


class BlueprintList(Model):
    results: list[BlueprintSummary]
    total: int
