"""docs/configuration.md lists every key of the server configuration with its variable."""

from __future__ import annotations

from live_server import ROOT
from plait.server import ServerConfig


def test_every_config_key_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    for name in ServerConfig.model_fields:
        assert f"| `{name}` | `PLAIT_{name.upper()}` |" in text, name
