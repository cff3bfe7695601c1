"""Plugin discovery isolation, proven with real installed distributions and the real CLI.

Each tiny plugin below is installed into a throw-away site directory exactly as pip installs a
wheel (module source plus a ``<name>-<version>.dist-info`` directory with METADATA,
entry_points.txt, RECORD, INSTALLER and WHEEL). The ``plait`` console script then runs in a
subprocess with that directory on ``PYTHONPATH``: nothing is monkeypatched, discovery goes
through ``importlib.metadata`` and stevedore as in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: ``python -m plait.cli`` does not work (the package has no ``__main__``): use the console
#: script installed next to the interpreter, which is what users run.
PLAIT = Path(sys.executable).parent / "plait"
TIMEOUT = 60

PREAMBLE = """\
from __future__ import annotations

from typing import ClassVar

from plait_sdk import Output, RunContext, Task, hookimpl
"""


@dataclass(frozen=True)
class Dist:
    """One distribution to install: its name, version, modules and entry points."""

    name: str
    version: str
    modules: dict[str, str]
    entry_points: dict[str, str]

    @property
    def dist_info(self) -> str:
        # Wheel spelling of the distribution name: runs of -_. become one underscore.
        return f"{self.name.replace('-', '_')}-{self.version}.dist-info"


GOOD = Dist(
    "plait-good",
    "1.2.3",
    {
        "plait_good": PREAMBLE
        + '''
PLAIT_PLUGIN_API = ">=1.0,<2"


class HelloOutput(Output):
    greeting: str
    """The greeting that was logged."""


class Hello(Task):
    """Greet someone."""

    type_name: ClassVar[str] = "good.Hello"
    who: str
    """Who to greet."""
    shout_twice: bool = False
    """Repeat the greeting."""

    async def run(self, ctx: RunContext) -> HelloOutput:
        greeting = f"hello {self.who}"
        ctx.log.info(greeting)
        return HelloOutput(greeting=greeting)


@hookimpl
def register_tasks(register):
    register(Hello)
'''
    },
    {"good": "plait_good"},
)

BROKEN_IMPORT = Dist(
    "plait-broken-import",
    "0.0.1",
    {
        "plait_broken_import": PREAMBLE
        + '''
import plait_missing_dependency  # noqa: F401  (not installed: the import fails)


class Thing(Task):
    """Never importable."""

    type_name: ClassVar[str] = "broken.Thing"


@hookimpl
def register_tasks(register):
    register(Thing)
'''
    },
    {"broken": "plait_broken_import"},
)

#: Named to sort after plait-good: plugins register in distribution-name order, so the clash
#: is reported against this one wherever the two are installed.
CLASH = Dist(
    "plait-hello-clash",
    "2.0.0",
    {
        "plait_hello_clash": PREAMBLE
        + '''

class Impostor(Task):
    """Claims a type name another plugin owns."""

    type_name: ClassVar[str] = "good.Hello"
    impostor: int = 1


class Extra(Task):
    """A type nobody else claims: it must still register."""

    type_name: ClassVar[str] = "clash.Extra"
    level: int = 3
    """How extra."""


@hookimpl
def register_tasks(register):
    register(Impostor)
    register(Extra)
'''
    },
    {"clash": "plait_hello_clash"},
)

FUTURE_API = Dist(
    "plait-future-api",
    "3.1.0",
    {
        "plait_future_api": PREAMBLE
        + '''
PLAIT_PLUGIN_API = ">=2.0"


class Later(Task):
    """Written for a plugin API this Plait does not provide."""

    type_name: ClassVar[str] = "future.Later"


@hookimpl
def register_tasks(register):
    register(Later)
'''
    },
    {"future": "plait_future_api"},
)

HOOK_RAISES = Dist(
    "plait-hook-raises",
    "0.4.0",
    {
        "plait_hook_raises": PREAMBLE
        + """

@hookimpl
def register_tasks(register):
    raise RuntimeError("no license key in [/etc/acme/license.key]")
"""
    },
    {"raises": "plait_hook_raises"},
)

NOT_A_MODULE = Dist(
    "plait-not-a-module",
    "0.5.0",
    {"plait_not_a_module": "HOOKS = {'register_tasks': None}\n"},
    {"notmod": "plait_not_a_module:HOOKS"},
)

ASSERT_IMPORT = Dist(
    "plait-assert-import",
    "0.6.0",
    {"plait_assert_import": 'assert False, "this plugin needs a newer interpreter"\n'},
    {"asserts": "plait_assert_import"},
)

EXIT_IMPORT = Dist(
    "plait-exit-import",
    "0.7.0",
    {"plait_exit_import": 'raise SystemExit("install plait-exit-import[extra]")\n'},
    {"exits": "plait_exit_import"},
)

DISTS = (
    GOOD,
    BROKEN_IMPORT,
    CLASH,
    FUTURE_API,
    HOOK_RAISES,
    NOT_A_MODULE,
    ASSERT_IMPORT,
    EXIT_IMPORT,
)


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def install(site: Path, dist: Dist) -> None:
    """Install ``dist`` into ``site`` the way pip lays out a wheel."""
    files: dict[str, bytes] = {
        f"{module}.py": textwrap.dedent(source).encode() for module, source in dist.modules.items()
    }
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
        return subprocess.run(
            [str(PLAIT), *args],
            capture_output=True,
            text=True,
            env=self.vars,
            cwd=self.work,
            timeout=TIMEOUT,
            check=False,
        )


def make_env(root: Path, *sites: Path) -> Env:
    """An environment whose ``sys.path`` has ``sites`` in front of the virtualenv's."""
    work = root / "work"
    work.mkdir()
    variables = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(map(str, sites)),
        "PYTHONDONTWRITEBYTECODE": "1",
        # stevedore caches entry points per sys.path; keep that cache out of the home directory.
        "XDG_CACHE_HOME": str(root / "cache"),
        "NO_COLOR": "1",
        "COLUMNS": "400",
    }
    return Env(work, variables)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("plugins")
    site = root / "site-packages"
    for dist in DISTS:
        install(site, dist)
    return make_env(root, site)


@pytest.fixture(scope="module")
def listing(env: Env) -> dict[str, dict[str, Any]]:
    proc = env.plait("plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    records = json.loads(proc.stdout)
    by_dist = {r["distribution"]: r for r in records}
    assert len(by_dist) == len(records), records
    return by_dist


def test_the_site_directory_is_a_real_installation(env: Env) -> None:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps(sorted((d.metadata['Name'], d.version, len(d.files or [])) "
        "for d in m.distributions() if d.metadata['Name'].startswith('plait-'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env.vars,
        timeout=TIMEOUT,
        check=True,
    )
    found = {name: (version, nfiles) for name, version, nfiles in json.loads(proc.stdout)}
    for dist in DISTS:
        # RECORD lists the modules, METADATA, entry_points.txt, INSTALLER, WHEEL and itself.
        assert found[dist.name] == (dist.version, len(dist.modules) + 5)


def test_every_plugin_is_listed_with_its_distribution_and_version(
    listing: dict[str, dict[str, Any]],
) -> None:
    test_dists = {"plait"} | {d.name for d in DISTS}
    assert test_dists <= set(listing)
    # whatever else is listed is installed by this repository (its connectors), and healthy
    for name in set(listing) - test_dists:
        assert name.startswith("plait-")
        assert listing[name]["status"] == "ok"
    for dist in DISTS:
        record = listing[dist.name]
        assert record["version"] == dist.version
        ((ep_name, ep_value),) = dist.entry_points.items()
        assert (record["name"], record["module"]) == (ep_name, ep_value)


def test_core_plugin_is_still_ok(listing: dict[str, dict[str, Any]]) -> None:
    core = listing["plait"]
    assert (core["name"], core["status"], core["errors"]) == ("core", "ok", [])
    assert "plait.core.Log" in core["types"]


def test_good_plugin_is_ok(listing: dict[str, dict[str, Any]]) -> None:
    good = listing["plait-good"]
    assert (good["status"], good["errors"], good["types"]) == ("ok", [], ["good.Hello"])
    assert good["api"] == ">=1.0,<2"


@pytest.mark.parametrize(
    ("dist", "status", "errors", "types"),
    [
        pytest.param(
            BROKEN_IMPORT,
            "error",
            ["import failed: ModuleNotFoundError: No module named 'plait_missing_dependency'"],
            [],
            id="broken-import",
        ),
        pytest.param(
            CLASH,
            "error",
            [
                "type name 'good.Hello' is already registered by plait-good 1.2.3; "
                "good.Hello from plait-hello-clash 2.0.0 was not registered"
            ],
            ["clash.Extra"],
            id="clash",
        ),
        pytest.param(
            FUTURE_API,
            "incompatible",
            ["supports plugin API >=2.0 but this Plait provides 1.0"],
            [],
            id="future-api",
        ),
        pytest.param(
            HOOK_RAISES,
            "error",
            ["register_tasks raised RuntimeError: no license key in [/etc/acme/license.key]"],
            [],
            id="hook-raises",
        ),
        pytest.param(
            NOT_A_MODULE,
            "error",
            ["the entry point must name a module of hook implementations"],
            [],
            id="not-a-module",
        ),
        pytest.param(
            ASSERT_IMPORT,
            "error",
            ["import failed: AssertionError: this plugin needs a newer interpreter"],
            [],
            id="assert-at-import",
        ),
        pytest.param(
            EXIT_IMPORT,
            "error",
            ["import failed: SystemExit: install plait-exit-import[extra]"],
            [],
            id="exit-at-import",
        ),
    ],
)
def test_bad_plugin_is_reported_precisely(
    listing: dict[str, dict[str, Any]],
    dist: Dist,
    status: str,
    errors: list[str],
    types: list[str],
) -> None:
    record = listing[dist.name]
    assert (record["status"], record["errors"], record["types"]) == (status, errors, types)


@pytest.mark.parametrize("clash_first", [True, False], ids=["clash-first", "good-first"])
def test_clash_owner_does_not_depend_on_where_plugins_are_installed(
    tmp_path: Path, clash_first: bool
) -> None:
    good_site, clash_site = tmp_path / "good-site", tmp_path / "clash-site"
    install(good_site, GOOD)
    install(clash_site, CLASH)
    sites = (clash_site, good_site) if clash_first else (good_site, clash_site)
    proc = make_env(tmp_path, *sites).plait("plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    by_dist = {r["distribution"]: r for r in json.loads(proc.stdout)}
    good, clash = by_dist["plait-good"], by_dist["plait-hello-clash"]
    assert (good["status"], good["types"]) == ("ok", ["good.Hello"])
    assert (clash["status"], clash["types"]) == ("error", ["clash.Extra"])


def test_future_api_plugin_reports_its_declared_range(listing: dict[str, dict[str, Any]]) -> None:
    assert listing["plait-future-api"]["api"] == ">=2.0"


def test_human_table_mentions_every_distribution(
    env: Env, listing: dict[str, dict[str, Any]]
) -> None:
    proc = env.plait("plugins", "list")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for dist in DISTS:
        line = next((ln for ln in lines if f" {dist.name} " in ln), None)
        assert line is not None, f"{dist.name} missing from:\n{proc.stdout}"
        record = listing[dist.name]
        assert f" {record['name']} " in line
        assert f" {dist.version} " in line
        # Error texts are shown verbatim: brackets in them are not taken for rich markup.
        status = record["status"] + "".join(f": {e}" for e in record["errors"])
        assert status in line


def test_doc_of_the_good_type(env: Env) -> None:
    proc = env.plait("plugins", "doc", "good.Hello")
    assert proc.returncode == 0, proc.stderr
    assert "## `good.Hello`" in proc.stdout
    assert "From `plait-good`" in proc.stdout
    assert "| `who` | string | yes |  | Who to greet. |" in proc.stdout
    assert "| `shoutTwice` | boolean |  | false | Repeat the greeting. |" in proc.stdout
    assert "impostor" not in proc.stdout


def test_doc_json_of_the_good_type(env: Env) -> None:
    proc = env.plait("plugins", "doc", "good.Hello", "--json")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["title"] == "good.Hello"
    assert schema["properties"]["who"]["description"] == "Who to greet."
    assert schema["x-plait"]["outputs"]["properties"]["greeting"]["type"] == "string"


def test_non_clashing_type_of_the_clash_plugin_works(env: Env) -> None:
    proc = env.plait("plugins", "doc", "clash.Extra")
    assert proc.returncode == 0, proc.stderr
    assert "From `plait-hello-clash`" in proc.stdout
    assert "| `level` | integer |  | 3 | How extra. |" in proc.stdout


def test_doc_of_a_type_from_an_incompatible_plugin_is_a_clean_error(env: Env) -> None:
    proc = env.plait("plugins", "doc", "future.Later")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "error: TYPE: unknown type 'future.Later'" in proc.stderr


FLOW = """\
id: greet
namespace: tests.plugins
tasks:
  - id: hello
    type: {type}
    who: Plait
"""


def test_flow_using_the_good_type_validates(env: Env) -> None:
    flow = env.work / "good.yaml"
    flow.write_text(FLOW.format(type="good.Hello") + "    shoutTwice: true\n")
    proc = env.plait("flows", "validate", str(flow))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"ok {flow}"


def test_flow_with_a_bad_property_of_the_good_type_is_located(env: Env) -> None:
    flow = env.work / "typo.yaml"
    flow.write_text(FLOW.format(type="good.Hello").replace("who:", "whom:"))
    proc = env.plait("flows", "validate", str(flow))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all(ln.startswith(f"{flow}:") for ln in proc.stdout.splitlines())
    assert "whom" in proc.stdout


def test_flow_using_a_type_of_the_broken_plugin_fails_cleanly(env: Env) -> None:
    flow = env.work / "broken.yaml"
    flow.write_text(FLOW.format(type="broken.Thing"))
    proc = env.plait("flows", "validate", str(flow))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"{flow}:5:11: tasks[0].type: unknown task type 'broken.Thing'"
    ]
    assert proc.stderr.strip() == "1 of 1 flow file(s) invalid"
