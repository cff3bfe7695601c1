"""Blueprints contributed by installed plugin distributions through ``register_blueprints``,
proven with the real ``plait`` command.

Two tiny distributions are installed into a throw-away site directory the way pip lays out a
wheel (modules, package data and a ``.dist-info`` with METADATA, entry_points.txt and RECORD):
``plait-acme-blueprints`` ships ``acme.hello`` as package data; ``plait-copycat`` ships a
blueprint of its own, one whose id ``plait-acme-blueprints`` already registers, and one with
invalid metadata. Discovery goes through importlib.metadata and stevedore as in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PLAIT = Path(sys.executable).parent / "plait"
TIMEOUT = 120

HOOK = """\
from pathlib import Path

from plait_sdk import RegisterBlueprint, hookimpl

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_blueprints(register: RegisterBlueprint) -> None:
    register(Path(__file__).parent / "blueprints")
"""

HELLO_META = """\
id: acme.hello
title: Say hello
version: 1.0.0
tags: [acme, demo]
description: Return a greeting for a name; shipped by the acme connector.
example: |
  id: hello
  type: plait.core.Subflow
  blueprint: acme.hello
  inputs: {name: Ada}
"""

HELLO_FLOW = """\
id: hello
namespace: acme
inputs:
  - id: name
    type: STRING
    description: Who to greet.
tasks:
  - id: greet
    type: plait.core.Return
    format: "Hello, {{ inputs.name }}!"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.value }}"
    description: The greeting.
"""


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    files: dict[str, str]
    entry_points: dict[str, str] = field(default_factory=dict)

    @property
    def dist_info(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.dist-info"


ACME = Dist(
    "plait-acme-blueprints",
    "1.0.0",
    {
        "plait_acme/__init__.py": "",
        "plait_acme/plugin.py": HOOK,
        "plait_acme/blueprints/acme.hello/blueprint.yaml": HELLO_META,
        "plait_acme/blueprints/acme.hello/flow.yaml": HELLO_FLOW,
    },
    {"acme": "plait_acme.plugin"},
)

COPYCAT = Dist(
    "plait-copycat",
    "2.0.0",
    {
        "plait_copycat/__init__.py": "",
        "plait_copycat/plugin.py": HOOK,
        # Valid, and its own: registered although its siblings are not.
        "plait_copycat/blueprints/copycat.fine/blueprint.yaml": HELLO_META.replace(
            "acme.hello", "copycat.fine"
        ),
        "plait_copycat/blueprints/copycat.fine/flow.yaml": HELLO_FLOW,
        # The id plait-acme-blueprints (earlier in distribution order) already registers.
        "plait_copycat/blueprints/acme.hello/blueprint.yaml": HELLO_META.replace(
            "Say hello", "Say hello, again"
        ),
        "plait_copycat/blueprints/acme.hello/flow.yaml": HELLO_FLOW,
        # Invalid metadata: no title, a version that is not one.
        "plait_copycat/blueprints/copycat.broken/blueprint.yaml": "id: copycat.broken\n"
        "version: one\n",
        "plait_copycat/blueprints/copycat.broken/flow.yaml": HELLO_FLOW,
    },
    {"copycat": "plait_copycat.plugin"},
)


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def install(site: Path, dist: Dist) -> None:
    """Install ``dist`` into ``site`` the way pip lays out a wheel with package data."""
    files = {rel: textwrap.dedent(text).encode() for rel, text in dist.files.items()}
    info = dist.dist_info
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n"
        f"Summary: test plugin {dist.name}\nRequires-Dist: plait-sdk\n"
    ).encode()
    eps = "".join(f"{name} = {value}\n" for name, value in dist.entry_points.items())
    files[f"{info}/entry_points.txt"] = f"[plait.plugins]\n{eps}".encode()
    files[f"{info}/INSTALLER"] = b"pip\n"
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    for rel, data in files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    record = [_record_line(rel, data) for rel, data in files.items()]
    record.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(record) + "\n")


@dataclass(frozen=True)
class Env:
    work: Path
    vars: dict[str, str]

    def plait(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(PLAIT), *args],
            capture_output=True,
            text=True,
            env=self.vars,
            cwd=self.work,
            timeout=TIMEOUT,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("bp-plugins")
    site = root / "site-packages"
    for dist in (ACME, COPYCAT):
        install(site, dist)
    work = root / "work"
    work.mkdir()
    variables = {
        **os.environ,
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "XDG_CACHE_HOME": str(root / "cache"),  # stevedore's entry-point cache
        "PLAIT_HOME": str(root / "home"),
        "NO_COLOR": "1",
        "COLUMNS": "400",
    }
    variables.pop("PLAIT_SERVER", None)
    return Env(work, variables)


@pytest.fixture(scope="module")
def plugins(env: Env) -> dict[str, dict[str, Any]]:
    done = env.plait("plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {r["distribution"]: r for r in json.loads(done.stdout)}


def test_a_plugin_blueprint_is_listed_used_and_called_as_a_subflow(env: Env) -> None:
    listed = env.plait("blueprints", "list", "--tag", "acme", "--json")
    assert listed.returncode == 0, listed.stderr
    found = {b["id"]: b for b in json.loads(listed.stdout)}
    assert sorted(found) == ["acme.hello", "copycat.fine"]
    assert found["acme.hello"]["distribution"] == "plait-acme-blueprints"
    assert found["acme.hello"]["title"] == "Say hello"  # the first registration kept the id
    assert found["copycat.fine"]["distribution"] == "plait-copycat"
    shown = env.plait("blueprints", "show", "acme.hello")
    assert shown.returncode == 0, shown.stderr
    assert "name (STRING, required): Who to greet." in shown.stdout

    deployed = env.plait("blueprints", "use", "acme.hello", "--namespace", "company.team")
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.strip() == "company.team.hello revision 1 (blueprint acme.hello)"
    flows = env.plait("flows", "list")
    assert "company.team" in flows.stdout
    assert "hello" in flows.stdout

    caller = env.work / "caller.yaml"
    caller.write_text(
        textwrap.dedent(
            """\
            id: caller
            namespace: company.team
            tasks:
              - id: call
                type: plait.core.Subflow
                blueprint: acme.hello
                blueprintVersion: ">=1,<2"
                inputs:
                  name: Ada
            outputs:
              - id: said
                type: STRING
                value: "{{ outputs.call.outputs.greeting }}"
            """
        )
    )
    ran = env.plait("run", str(caller), "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)
    assert run["state"] == "SUCCESS", run
    assert run["outputs"] == {"said": "Hello, Ada!"}


def test_the_same_id_from_two_distributions_is_reported_naming_both(
    plugins: dict[str, dict[str, Any]],
) -> None:
    assert plugins["plait-acme-blueprints"]["status"] == "ok"
    copycat = plugins["plait-copycat"]
    assert copycat["status"] == "error"
    assert (
        "blueprint 'acme.hello' of plait-copycat 2.0.0 was not registered: "
        "plait-acme-blueprints 1.0.0 already registers that id (rename one of them)"
    ) in copycat["errors"]
    assert plugins["plait"]["status"] == "ok"


def test_invalid_blueprint_files_are_a_plugin_status_not_a_crash(
    env: Env, plugins: dict[str, dict[str, Any]]
) -> None:
    errors = plugins["plait-copycat"]["errors"]
    meta = "plait_copycat/blueprints/copycat.broken/blueprint.yaml"
    broken = [e for e in errors if meta in e]
    assert len(broken) == 2, errors
    assert any(e.endswith("title: Field required") for e in broken), broken
    assert any("version: Value error, 'one' is not a version" in e for e in broken), broken
    assert all(e.startswith("register_blueprints: invalid blueprint: ") for e in broken)
    shown = env.plait("plugins", "list")
    assert shown.returncode == 0, shown.stderr
    assert "error" in shown.stdout
    unknown = env.plait("blueprints", "show", "copycat.broken")
    assert unknown.returncode == 1
    assert "unknown blueprint 'copycat.broken'" in unknown.stderr
