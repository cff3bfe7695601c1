"""Fixtures of the server tests: a live server subprocess per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_server import EXAMPLES, LiveServer, start_server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per test module, with the example flows deployed."""
    home = tmp_path_factory.mktemp("server") / "home"
    server = start_server(home, "--deploy", str(EXAMPLES))
    try:
        yield server
    finally:
        server.stop()
