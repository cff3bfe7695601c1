"""Plugin discovery, the type registry and the hook facade."""

from plait.plugins._awaiting import resolve
from plait.plugins._blueprints import load_blueprint, load_blueprints
from plait.plugins._host import (
    ENTRY_POINT_GROUP,
    PluginHost,
    PluginRecord,
    Route,
    TemplateExtension,
)
from plait.plugins._install import Installer, InstallResult
from plait.plugins._install import installed as installed_distributions
from plait.plugins._registry import Origin, TypeClash, TypeInfo, TypeRegistry, UnknownVersion
from plait.plugins._requirements import (
    installed,
    needed_plugins,
    requirement_problems,
    unknown_blueprint,
    version_problem,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstallResult",
    "Installer",
    "Origin",
    "PluginHost",
    "PluginRecord",
    "Route",
    "TemplateExtension",
    "TypeClash",
    "TypeInfo",
    "TypeRegistry",
    "UnknownVersion",
    "installed",
    "installed_distributions",
    "load_blueprint",
    "load_blueprints",
    "needed_plugins",
    "requirement_problems",
    "resolve",
    "unknown_blueprint",
    "version_problem",
]
