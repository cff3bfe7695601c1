"""Fixtures of the web UI's tests: Debian's Chromium driven by Playwright, a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import EXAMPLES, ROOT, LiveServer, cli, start_server
from ui_support import ARGS, BUNDLE, CHROMIUM, PASSWORD, missing

# Screenshots go to docs/ui/ when asked (make ui-screenshots), else to the test's tmp dir.
SHOTS = os.environ.get("PLAIT_UI_SCREENSHOTS")


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    """A page of a fresh Chromium profile; fails the test on a script error of the page."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    if not BUNDLE.exists():
        missing(f"the UI bundle is not built ({BUNDLE}; make ui)")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 860},
            locale="en-GB",
            timezone_id="UTC",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            context.close()
    assert errors == [], f"script errors in the page: {errors}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server with the examples deployed and an editor, ada, who logs in (one per
    module: each test works on its own flows and executions, in its own browser profile)."""
    home = tmp_path_factory.mktemp("ui-server") / "home"
    live = start_server(home, "--deploy", str(EXAMPLES))
    try:
        made = cli(home, "auth", "user", "create", "ada", "--role", "editor", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        yield live
    finally:
        live.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/ui/ with PLAIT_UI_SCREENSHOTS=1, else the test's tmp dir."""
    target = ROOT / "docs" / "ui" if SHOTS == "1" else tmp_path / "shots"
    target.mkdir(parents=True, exist_ok=True)
    return target
