"""Versions of the SDK distribution and of the plugin API it speaks."""

from __future__ import annotations

__version__ = "0.1.0"

#: The plugin API this SDK implements. A plugin declares the range it supports in its hook module
#: as ``PLAIT_PLUGIN_API = ">=1.0,<2"``; the core reports, rather than loads, a plugin whose range
#: excludes this version. Bump the minor for additive hooks, the major for breaking ones.
PLUGIN_API_VERSION = "1.0"
