"""Version of plait-http, as sent in the User-Agent header."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("plait-http")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

USER_AGENT = f"plait-http/{__version__}"
