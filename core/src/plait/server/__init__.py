"""The hub server: the REST API over the engine (``plait server local``)."""

from plait.server._config import ServerConfig, load_config

__all__ = ["ServerConfig", "load_config"]
