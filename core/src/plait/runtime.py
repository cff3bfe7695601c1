"""Process-wide singletons: the plugin host is discovered once per process."""

from __future__ import annotations

import gc
from functools import lru_cache

from plait.plugins import PluginHost
from plait.templating import TemplateEngine


@lru_cache(maxsize=1)
def plugin_host() -> PluginHost:
    """The plugin host of this process (built-in plugin plus every installed plugin)."""
    return PluginHost.discover()


@lru_cache(maxsize=1)
def template_engine() -> TemplateEngine:
    """A template engine with every installed plugin's filters, tests and functions."""
    return configured_engine(plugin_host())


def configured_engine(host: PluginHost) -> TemplateEngine:
    engine = TemplateEngine()
    for ext in host.template_extensions.values():
        if ext.kind == "filter":
            engine.add_filter(ext.name, ext.fn)
        elif ext.kind == "test":
            engine.add_test(ext.name, ext.fn)
        else:
            engine.add_function(ext.name, ext.fn)
    return engine


def settle_heap() -> None:
    """End of start-up: freeze what it made and let the garbage collector run again.

    The ``plait`` command turns the cyclic collector off while it imports (``plait._entry``) and
    calls this before running the command; a long-running entry point (the local runner, a
    server) calls it once started too. Whatever start-up made lives as long as the process, so
    it is moved out of the collector's reach (``gc.freeze``) and later collections only look at
    what the work creates. A process that never turned collection off (a library user, the
    tests) is left alone.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
