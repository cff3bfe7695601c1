"""Shared pydantic configuration: camelCase in YAML and JSON, snake_case in Python."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from plait_sdk._docstrings import remember_definition

#: Properties are written ``camelCase`` in flows (Kestra's spelling) and ``snake_case`` in Python.
PROPERTIES_CONFIG = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    extra="forbid",
    # Attribute docstrings become field descriptions in schemas only (plait_sdk._docstrings):
    # pydantic's use_attribute_docstrings re-reads the source of every model as it is created.
    arbitrary_types_allowed=False,
    # Validators are built on first use: a process loads every installed connector, but a run
    # validates only the types its flow uses.
    defer_build=True,
)


class Model(BaseModel):
    """Base of every SDK model: camelCase aliases, unknown properties refused.

    Example::

        >>> class Settings(Model):
        ...     max_keys: int = 1000
        >>> Settings.model_validate({"maxKeys": 5}).max_keys
        5
    """

    model_config = PROPERTIES_CONFIG

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        remember_definition(cls)

    def dump(self) -> dict[str, Any]:
        """The model as JSON-friendly data with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
