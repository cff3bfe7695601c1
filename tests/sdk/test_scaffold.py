"""``plait sdk new``: a plugin distribution that works right after scaffolding.

The round trip is the issue's promise, checked as a plugin author would see it: a fresh venv
(no access to this repository's environment), plait-sdk and plait installed from the checkout,
the new plugin installed editable, then its own tests pass, ``plait plugins list`` shows it
loaded and its committed reference page is current. Installs come from uv's cache (``--offline``,
pinned to this environment's versions), so the test needs no network on a machine where
``make dev`` ran; only when uv's cached index entries expired does it let uv revalidate them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from plait.cli import cli
from plait.scaffold import names_for, new_plugin

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".tools" / "bin" / "uv"


def test_names_follow_the_plugin_conventions() -> None:
    assert names_for("weather") == names_for("plait-weather")
    names = names_for("my-crm")
    assert (names.dist, names.module, names.short) == ("plait-my-crm", "plait_my_crm", "my_crm")


@pytest.mark.parametrize("bad", ["Weather", "1st", "a b", "plait", "core", "x--y", ""])
def test_a_bad_name_is_one_clear_error(bad: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sdk", "new", bad, "--dir", str(tmp_path / "p")])
    assert result.exit_code != 0
    assert "invalid plugin name" in result.output or "Missing argument" in result.output
    assert not (tmp_path / "p").exists()


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["sdk", "new", "weather", "--dir", str(tmp_path / "p")])
    assert result.exit_code == 1
    assert "exists and is not empty" in result.output
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no staging directory left over


def test_the_distribution_declares_its_entry_point_and_api_range(tmp_path: Path) -> None:
    target = new_plugin("weather", tmp_path / "w")
    pyproject = (target / "pyproject.toml").read_text()
    assert '[project.entry-points."plait.plugins"]\nweather = "plait_weather.plugin"' in pyproject
    plugin = (target / "src" / "plait_weather" / "plugin.py").read_text()
    assert 'PLAIT_PLUGIN_API = ">=1.0,<2"' in plugin
    tests = "".join(p.read_text() for p in (target / "tests").glob("*.py"))
    assert "plait_sdk.testing" in tests
    assert "import plait\n" not in tests
    assert "from plait." not in tests
    for name in ("README.md", "ci.sh", "docs/reference.md"):
        assert (target / name).is_file(), name
    assert os.access(target / "ci.sh", os.X_OK)


@pytest.mark.skipif(not UV.exists(), reason="uv is bootstrapped by make dev")
def test_new_plugin_installs_tests_and_loads_in_a_fresh_venv(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sdk", "new", "weather", "--dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    plugin = tmp_path / "w"
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    subprocess.run(
        [UV, "venv", "-q", "--python", sys.executable, venv], check=True, env=env, timeout=60
    )
    install = [
        UV, "pip", "install", "-q", "--python", venv / "bin" / "python",
        REPO / "sdk", REPO / "core", "-e", f"{plugin}[test]",
    ]  # fmt: skip
    # The exact versions this checkout is tested with, from uv's cache.
    frozen = subprocess.run(
        [UV, "pip", "freeze", "--python", sys.executable],
        capture_output=True, text=True, check=True, env=env, timeout=60,
    ).stdout  # fmt: skip
    pins = tmp_path / "constraints.txt"
    pins.write_text(
        "\n".join(line for line in frozen.splitlines() if "plait" not in line and "://" not in line)
    )
    done = subprocess.run(
        [*install, "--offline", "-c", pins], capture_output=True, text=True, env=env, timeout=120
    )
    if done.returncode != 0 and "network was disabled" in done.stderr:
        # uv's cache holds the wheels but its index entries expired: let uv revalidate them.
        done = subprocess.run(
            [*install, "-c", pins], capture_output=True, text=True, env=env, timeout=300
        )
    assert done.returncode == 0, done.stderr[-2000:]

    tests = subprocess.run(
        [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=plugin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "3 passed" in tests.stdout

    listed = subprocess.run(
        [venv / "bin" / "plait", "plugins", "list", "--json"],
        cwd=plugin, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    found = [p for p in json.loads(listed.stdout) if p["distribution"] == "plait-weather"]
    assert found, listed.stdout
    assert found[0]["status"] == "ok"
    assert found[0]["types"] == ["weather.Greet", "weather.NewFiles"]

    check = subprocess.run(
        [venv / "bin" / "plait", "sdk", "reference", "plait-weather", "--check",
         "docs/reference.md"],
        cwd=plugin, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    # ...and a stale page is caught.
    (plugin / "docs" / "reference.md").write_text("old\n")
    stale = subprocess.run(check.args, cwd=plugin, capture_output=True, text=True, env=env)
    assert stale.returncode == 1
    assert "is not the current reference" in stale.stderr
    shutil.rmtree(venv)
