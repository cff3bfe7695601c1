"""Installable connectors, proven end to end in a fresh virtual environment.

``make dist`` builds the wheels of every distribution; a fresh venv (with pip, made by the stdlib
``venv``) gets the connector from those wheels with plain ``pip --no-index``. This machine and CI
reach no index during the tests, so the third-party dependencies (aiohttp, SQLAlchemy...) are put
into the venv first by ``uv sync --offline`` from the lock file and uv's cache, which ``make dev``
fills: pip then finds them satisfied and installs only Plait's own wheels. Then the real
``plait`` console script of that venv installs, loads, runs and uninstalls plugins through pip.
"""

from __future__ import annotations

import ensurepip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ci_switch import service_missing

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"
DISTS = Path(__file__).parent / "dists"
TIMEOUT = 300


def _run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "UV_", "PLAIT_CATALOGUE"))
    }
    # pip compiles every installed module by default: seconds of CPU per install, not tested here.
    env["PIP_NO_COMPILE"] = "1"
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        **kwargs,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}"
    return proc


CATALOGUE_PATH = (
    "from plait.catalogue import default_catalogue_path; print(default_catalogue_path())"
)

INSTALLED = """\
import importlib.metadata as m, json
print(json.dumps({d.metadata["Name"].lower(): d.version for d in m.distributions()}))
"""


@dataclass(frozen=True)
class Venv:
    root: Path
    wheels: Path
    test_wheels: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def plait(self, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        home = self.root.parent / "home"
        return _run(self.root / "bin" / "plait", *args, cwd=cwd, env={"PLAIT_HOME": str(home)})

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(self.python, "-m", "pip", "--disable-pip-version-check", *args)

    def installed(self) -> dict[str, str]:
        """Distribution -> version, read without starting pip (seconds of CPU each time)."""
        return dict(json.loads(_ok(_run(self.python, "-c", INSTALLED)).stdout))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    if not UV.exists() or shutil.which("make") is None:
        service_missing(f"{UV} and make are needed to build the wheels (run `make dev`)")
    root = tmp_path_factory.mktemp("install")
    wheels, test_wheels = root / "dist", root / "test-dist"
    # The real `make dist`, into a temporary folder instead of the checkout's dist/.
    _ok(_run("make", "-s", "-C", ROOT, "dist", f"DIST={wheels}"))
    for name in ("versioned", "broken", "helper", "weighted"):
        _ok(_run(UV, "build", "--offline", "--wheel", "-q", "--out-dir", test_wheels, DISTS / name))
    venv = Venv(root / "venv", wheels, test_wheels)
    # A venv with pip, as `python -m venv` makes it, but without its ~1,000 .pyc compiles
    # (`ensurepip` took 36 s of a loaded machine): pip's wheel bundled with Python, put in by uv.
    _ok(_run(UV, "venv", "-q", "--offline", "--python", sys.executable, venv.root))
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    _ok(
        _run(
            UV,
            "pip",
            "install",
            "-q",
            "--offline",
            "--python",
            venv.python,
            *bundled.glob("pip-*.whl"),
        )
    )
    sync = _run(
        UV,
        "sync",
        "--frozen",
        "--offline",
        "--all-packages",
        "--no-dev",
        "--no-install-workspace",
        "--inexact",  # keep the venv's pip
        "--python",
        venv.python,
        cwd=ROOT,
        env={"UV_PROJECT_ENVIRONMENT": str(venv.root)},
    )
    if sync.returncode != 0:
        service_missing(f"the locked dependencies are not in uv's cache: {sync.stderr[-500:]}")
    _ok(venv.pip("install", "--no-index", "--find-links", wheels, "plait", "plait-http"))
    return venv


def test_make_dist_builds_a_wheel_and_an_sdist_of_every_distribution(venv: Venv) -> None:
    names = sorted(p.name for p in venv.wheels.iterdir())
    for dist in ("plait", "plait_sdk", "plait_http", "plait_db", "plait_s3", "plait_scripts"):
        assert f"{dist}-0.1.0-py3-none-any.whl" in names
        assert f"{dist}-0.1.0.tar.gz" in names


def test_each_wheel_ships_the_blueprints_of_its_distribution(venv: Venv) -> None:
    def members(name: str) -> set[str]:
        with zipfile.ZipFile(venv.wheels / f"{name}-0.1.0-py3-none-any.whl") as wheel:
            return set(wheel.namelist())

    own = "plait_db/blueprints/db.incremental-copy-postgres-to-mariadb"
    assert {f"{own}/blueprint.yaml", f"{own}/flow.yaml"} <= members("plait_db")
    core = members("plait")
    assert "plait/_library/blueprints/etl.http-to-postgres/flow.yaml" in core
    assert not any("db.incremental-copy" in m for m in core)  # shipped once, by plait-db
    with tarfile.open(venv.wheels / "plait_db-0.1.0.tar.gz") as sdist:
        assert any(m.endswith(f"{own}/flow.yaml") for m in sdist.getnames())


def test_the_connector_installed_from_its_wheel_with_plain_pip(venv: Venv) -> None:
    installed = venv.installed()
    assert installed["plait-http"] == "0.1.0"
    assert installed["plait-sdk"] == "0.1.0"
    assert "plait-db" not in installed
    # Installed into the venv from the wheel, not an editable link to this checkout.
    where = _ok(_run(venv.python, "-c", "import plait_http; print(plait_http.__file__)")).stdout
    assert where.strip().startswith(str(venv.root))
    plugins = {
        r["distribution"]: r for r in json.loads(venv.plait("plugins", "list", "--json").stdout)
    }
    assert plugins["plait-http"]["status"] == "ok"
    assert "plait.http.Request" in plugins["plait-http"]["types"]


def test_the_plait_wheel_ships_the_catalogue_and_search_reads_it(venv: Venv) -> None:
    [wheel] = venv.wheels.glob("plait-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = json.loads(archive.read("plait/_library/catalogue.json"))
    assert shipped == json.loads((ROOT / "registry" / "catalogue.json").read_text("utf-8"))
    # Run from outside any checkout, with no $PLAIT_CATALOGUE: only the packaged file can answer.
    found = json.loads(
        _ok(venv.plait("plugins", "search", "postgres", "--json", cwd=venv.root)).stdout
    )
    assert [(row["name"], row["installed"]) for row in found] == [("plait-db", None)]
    where = _ok(_run(venv.python, "-c", CATALOGUE_PATH)).stdout.strip()
    assert where.startswith(str(venv.root))


def test_plugins_install_and_uninstall_a_connector_from_a_folder(venv: Venv) -> None:
    done = _ok(venv.plait("plugins", "install", "plait-db", "--find-links", venv.wheels))
    assert "installed plait-db 0.1.0" in done.stdout
    # The status comes from loading every plugin in a fresh process after pip.
    assert "plugin db: ok (plait.db.Query" in done.stdout
    assert venv.installed()["plait-db"] == "0.1.0"
    # Its blueprints come with it, read from the installed package data.
    listed = json.loads(_ok(venv.plait("blueprints", "list", "--json")).stdout)
    by_id = {b["id"]: b["distribution"] for b in listed}
    assert by_id["db.incremental-copy-postgres-to-mariadb"] == "plait-db"

    gone = _ok(venv.plait("plugins", "uninstall", "plait-db"))
    assert gone.stdout.strip() == "uninstalled plait-db 0.1.0"
    assert "plait-db" not in venv.installed()


def test_a_plugin_that_fails_to_load_is_reported_and_removed_again(venv: Venv) -> None:
    before = venv.installed()
    failed = venv.plait("plugins", "install", "plait-broken", "--find-links", venv.test_wheels)
    assert failed.returncode == 1, failed.stdout
    assert "Traceback" not in failed.stderr
    assert "plait-broken 0.1.0 does not load; it was uninstalled again" in failed.stderr
    assert "ImportError: plait_broken needs libacme, which is not installed" in failed.stderr
    # The plugin and the dependency the same install brought in are both gone.
    assert venv.installed() == before


def test_two_versions_of_a_type_in_one_real_run(venv: Venv, tmp_path: Path) -> None:
    _ok(venv.plait("plugins", "install", "plait-versioned", "--find-links", venv.test_wheels))
    flow = tmp_path / "greet.yaml"
    flow.write_text(
        textwrap.dedent(
            """\
            id: greet
            namespace: demo
            tasks:
              - id: old
                type: versioned.Greet
                version: 1
                name: Ada
              - id: new
                type: versioned.Greet
                who: Grace
            outputs:
              - id: both
                type: STRING
                value: "{{ outputs.old.greeting }} / {{ outputs.new.greeting }}"
            """
        )
    )
    run = json.loads(_ok(venv.plait("run", flow, "--json", cwd=tmp_path)).stdout)
    assert run["state"] == "SUCCESS", run
    assert run["outputs"] == {"both": "hello Ada / Hello, Grace!"}

    # The catalogue generated in that venv lists both versions, from the installed metadata.
    out = tmp_path / "registry"
    _ok(_run(venv.python, "-m", "plait.catalogue", out))
    catalogue = json.loads((out / "catalogue.json").read_text())
    package = next(p for p in catalogue["packages"] if p["name"] == "plait-versioned")
    assert package["version"] == "2.0.0"
    assert package["summary"] == "Test plugin: one task type in two versions."
    assert package["pluginApi"] == ">=1.0,<2"
    assert [(t["type"], t["version"], t["latest"]) for t in package["tasks"]] == [
        ("versioned.Greet", 1, False),
        ("versioned.Greet", 2, True),
    ]
    assert "who" in package["tasks"][1]["schema"]["properties"]


def test_an_environment_without_pip_installs_with_uv(
    venv: Venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plait.plugins import Installer

    bare = tmp_path / "bare"
    _ok(_run(UV, "venv", "-q", "--offline", "--python", sys.executable, bare))
    monkeypatch.setenv("PATH", f"{UV.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PIP_NO_COMPILE", "1")
    installer = Installer(python=str(bare / "bin" / "python"), find_links=venv.test_wheels)
    assert installer.pip() == [shutil.which("uv"), "pip"]
    _ok(installer._run("install", *installer._source_args(), "plait-helper"))
    listed = _ok(_run(bare / "bin" / "python", "-c", INSTALLED)).stdout
    assert json.loads(listed) == {"plait-helper": "0.1.0"}
    _ok(installer._run(*installer._uninstall_args(), "plait-helper"))
    assert json.loads(_ok(_run(bare / "bin" / "python", "-c", INSTALLED)).stdout) == {}


def test_a_flowable_and_a_label_task_of_an_installed_plugin_in_a_real_run(
    venv: Venv, tmp_path: Path
) -> None:
    # tests/plugins/dists/weighted: built on the SDK alone, installed as a wheel with pip.
    done = _ok(venv.plait("plugins", "install", "plait-weighted", "--find-links", venv.test_wheels))
    assert "plugin weighted: ok" in done.stdout
    flow = tmp_path / "draw.yaml"
    flow.write_text(
        textwrap.dedent(
            """\
            id: draw
            namespace: demo
            tasks:
              - id: pick
                type: weighted.Branch
                seed: "1"
                branches:
                  - weight: 1
                    tasks:
                      - {id: heads, type: weighted.Tag, labels: {side: heads}}
                  - weight: 3
                    tasks:
                      - {id: tails, type: weighted.Tag, labels: {side: tails}}
            outputs:
              - id: picked
                type: STRING
                value: "{{ outputs.pick.branch }}"
            """
        )
    )
    run = json.loads(_ok(venv.plait("run", flow, "--json", cwd=tmp_path)).stdout)
    assert run["state"] == "SUCCESS", run
    # random.Random("1") draws branch 1 with weights 1:3 (the plugin's own seeded draw).
    assert run["outputs"] == {"picked": "1"}
    assert run["labels"]["side"] == "tails"
    states = {r["taskId"]: r["state"] for r in run["taskRuns"]}
    assert states == {"pick": "SUCCESS", "heads": "SKIPPED", "tails": "SUCCESS"}
