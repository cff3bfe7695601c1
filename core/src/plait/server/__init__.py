"""The hub server: the REST API over the engine (``plait server local``)."""

from typing import TYPE_CHECKING

from plait.server._config import ServerConfig, load_config

if TYPE_CHECKING:  # imported lazily below, at run time
    from plait.server._auth import TokenStore
    from plait.server._models import TokenCreate
    from plait.server._routes_triggers import trigger_list
    from plait.server._scheduler import set_disabled
    from plait.server._serve import configure_logging, serve
    from plait.server._trigger_gate import unlock
    from plait.server._users import UserStore

__all__ = [
    "ServerConfig",
    "TokenCreate",
    "TokenStore",
    "UserStore",
    "configure_logging",
    "load_config",
    "serve",
    "set_disabled",
    "trigger_list",
    "unlock",
]

# Where each lazily imported name lives: the server pulls in aiohttp and the engine, which the
# CLI's other commands (and `plait server` before its options are parsed) do not need.
_LAZY = {
    "TokenCreate": "plait.server._models",
    "TokenStore": "plait.server._auth",
    "UserStore": "plait.server._users",
    "configure_logging": "plait.server._serve",
    "serve": "plait.server._serve",
    "set_disabled": "plait.server._scheduler",
    "trigger_list": "plait.server._routes_triggers",
    "unlock": "plait.server._trigger_gate",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
