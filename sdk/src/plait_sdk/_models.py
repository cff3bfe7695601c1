"""Shared pydantic configuration: camelCase in YAML and JSON, snake_case in Python."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, model_validator
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

    @model_validator(mode="before")
    @classmethod
    def _java_durations(cls, data: Any) -> Any:
        # Kestra users write durations as Java's Duration.parse reads them (PT0.25s, -PT6H,
        # PT1H-30M); pydantic's ISO-8601 parser refuses those, so they are read here first.
        if not isinstance(data, dict):
            return data
        keys = _duration_keys(cls)
        if not keys:
            return data
        changed = None
        for key, value in data.items():
            if key in keys and isinstance(value, str):
                parsed = java_duration(value)
                if parsed is not None:
                    changed = changed or dict(data)
                    changed[key] = parsed
        return data if changed is None else changed

    def dump(self) -> dict[str, Any]:
        """The model as JSON-friendly data with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_JAVA_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?"
    r"(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE,
)


def java_duration(text: str) -> timedelta | None:
    """A duration as Java's ``Duration.parse`` reads it (case-insensitive, days, hours, minutes
    and fractional seconds, each part and the whole signed), else None.

    Example::

        >>> java_duration("PT0.25s"), java_duration("-PT1H30M"), java_duration("P2DT-1H")
        (datetime.timedelta(microseconds=250000), datetime.timedelta(days=-1, seconds=81000), \
datetime.timedelta(days=1, seconds=82800))
    """
    found = _JAVA_DURATION.fullmatch(text.strip())
    if found is None or not any(found.group(n) for n in (2, 3, 4, 5)):
        return None  # "P", "PT": Java refuses them too
    sign, days, hours, minutes, seconds, fraction = found.groups()
    total = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
    if seconds is not None:
        whole = int(seconds)
        part = timedelta(seconds=abs(whole), microseconds=int((fraction or "").ljust(6, "0")[:6]))
        total += -part if seconds.startswith("-") else part
    return -total if sign == "-" else total


@cache
def _duration_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys (names and aliases) of ``model``'s fields that hold a duration."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if _has_timedelta(info.annotation):
            keys.add(name)
            keys.add(info.alias or to_camel(name))
    return frozenset(keys)


def _has_timedelta(annotation: Any) -> bool:
    if annotation is timedelta:
        return True
    return any(_has_timedelta(arg) for arg in get_args(annotation))
