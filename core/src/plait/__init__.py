"""Plait: declarative YAML flows run by a slim async core; every connector is a plugin."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plait")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__"]
