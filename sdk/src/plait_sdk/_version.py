"""Versions of the SDK distribution and of the plugin API it speaks."""

from __future__ import annotations

__version__ = "0.1.0"
"""The version of the plait-sdk distribution (not the plugin API: see PLUGIN_API_VERSION).

Example::

    from plait_sdk import __version__
    print(f"built against plait-sdk {__version__}")
"""

PLUGIN_API_VERSION = "1.0"
"""The plugin API this SDK implements. A plugin declares the range it supports in its hook
module; the core reports, rather than loads, a plugin whose range excludes this version. The
minor is bumped for additive hooks, the major for breaking ones.

Example::

    # acme_plait/plugin.py
    PLAIT_PLUGIN_API = ">=1.0,<2"  # works with every 1.x
"""
