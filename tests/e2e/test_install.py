"""Each connector installs alone, with plait, into a clean virtual environment and is listed.

The packages are built from this checkout and installed with uv (its cache makes this fast and
needs no network once `make dev` ran); nothing of the development venv leaks in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = {
    "plait-http": ("plugins/http", "plait.http.Request"),
    "plait-db": ("plugins/db", "plait.db.Query"),
    "plait-s3": ("plugins/s3", "plait.s3.Upload"),
    "plait-scripts": ("plugins/scripts", "plait.scripts.python.Script"),
}


def _uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"
    if found.exists():
        return str(found)
    which = shutil.which("uv")
    if which is None:
        pytest.fail("uv is not available (run `make dev`)")
    return which


@pytest.mark.parametrize(
    "distributions",
    [[d] for d in sorted(PLUGINS)] + [["plait-http", "plait-db"]],
    ids=lambda ds: "+".join(ds),
)
def test_connectors_install_into_a_clean_venv_and_are_listed(
    distributions: list[str], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    subprocess.run(
        [_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        env=env,
        timeout=120,
    )
    python = venv / "bin" / "python"
    result = subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            str(ROOT / "sdk"),
            str(ROOT / "core"),
            *(str(ROOT / PLUGINS[d][0]) for d in distributions),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    listed = subprocess.run(
        [str(venv / "bin" / "plait"), "plugins", "list", "--json"],
        env={**env, "PLAIT_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    records = {r["distribution"]: r for r in json.loads(listed.stdout)}
    assert set(records) == {"plait", *distributions}  # nothing else came along
    for distribution in distributions:
        assert records[distribution]["status"] == "ok", records[distribution]
        assert PLUGINS[distribution][1] in records[distribution]["types"]
