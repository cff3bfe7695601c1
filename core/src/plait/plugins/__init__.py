"""Plugin discovery, the type registry and the hook facade."""

from plait.plugins._awaiting import resolve
from plait.plugins._host import (
    ENTRY_POINT_GROUP,
    PluginHost,
    PluginRecord,
    Route,
    TemplateExtension,
)
from plait.plugins._registry import Origin, TypeClash, TypeInfo, TypeRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Origin",
    "PluginHost",
    "PluginRecord",
    "Route",
    "TemplateExtension",
    "TypeClash",
    "TypeInfo",
    "TypeRegistry",
    "resolve",
]
