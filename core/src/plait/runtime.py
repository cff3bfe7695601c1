"""Process-wide singletons: the plugin host is discovered once per process."""

from __future__ import annotations

from functools import lru_cache

from plait.plugins import PluginHost


@lru_cache(maxsize=1)
def plugin_host() -> PluginHost:
    """The plugin host of this process (built-in plugin plus every installed plugin)."""
    return PluginHost.discover()
