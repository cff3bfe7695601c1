"""Versioned task types: registration, lookup, validation messages and the generated reference.

The test plugin is the one the fresh-venv test installs as a wheel (tests/plugins/dists/
versioned); here it is loaded in-process, like the engine tests' plugin, for the cheap checks.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest
from plait.docgen import pages
from plait.flows import load_flow
from plait.plugins import Origin, PluginHost, TypeClash, TypeInfo, TypeRegistry, UnknownVersion
from plait.reference import type_markdown
from plait_sdk import Task, ValidationError, type_schema

SOURCE = Path(__file__).parent / "dists" / "versioned" / "src" / "plait_versioned" / "__init__.py"
PLAIT = Path(sys.executable).parent / "plait"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plait_versioned", SOURCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLUGIN = _load()


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.discover(entry_points=False, extra=[PLUGIN])


def test_both_versions_are_registered_and_the_latest_is_the_default(host: PluginHost) -> None:
    registry = host.registry
    assert registry.versions("versioned.Greet") == [1, 2]
    assert registry.resolve("versioned.Greet") == registry.resolve("versioned.Greet", 2)
    assert registry.resolve("versioned.Greet", 2).cls is PLUGIN.GreetV2  # type: ignore[union-attr]
    assert registry.resolve("versioned.Greet", 1).cls is PLUGIN.GreetV1  # type: ignore[union-attr]
    with pytest.raises(UnknownVersion, match=r"has no version 3; its versions are 1, 2"):
        registry.resolve("versioned.Greet", 3)
    # Listed once per type; every version on demand.
    assert [i.name for i in registry].count("versioned.Greet") == 1
    assert [(i.name, i.version) for i in registry.all_versions() if i.name.startswith("v")] == [
        ("versioned.Greet", 1),
        ("versioned.Greet", 2),
    ]
    record = next(r for r in host.records if r.module == "plait_versioned")
    assert record.status == "ok"
    assert record.types == ["versioned.Greet"]
    assert type_schema(PLUGIN.GreetV1)["x-plait"]["version"] == 1


def _info(name: str, version: int, dist: str = "acme", aliases: tuple[str, ...] = ()) -> TypeInfo:
    class T(Task):
        type_name: ClassVar[str] = name

    return TypeInfo(name, T, "task", Origin("p", dist, "1"), aliases, version)


def test_a_version_twice_or_from_another_distribution_is_a_clash() -> None:
    registry = TypeRegistry()
    registry.add(_info("acme.T", 1, aliases=("io.acme.T",)))
    registry.add(_info("acme.T", 2))
    with pytest.raises(TypeClash, match=r"acme\.T@2"):
        registry.add(_info("acme.T", 2))
    with pytest.raises(TypeClash, match="already registered by acme 1"):
        registry.add(_info("acme.T", 3, dist="other"))
    # An alias of any version finds the type, the latest by default.
    assert registry.resolve("io.acme.T") == registry.resolve("acme.T", 2)
    assert registry.versions("io.acme.T") == [1, 2]


def test_a_bad_type_version_is_reported_against_the_plugin() -> None:
    class Bad(Task):
        type_name: ClassVar[str] = "acme.Bad"
        type_version: ClassVar[int] = 0

    plugin = ModuleType("acme_bad")
    plugin.register_tasks = lambda register: register(Bad)  # type: ignore[attr-defined]
    from plait_sdk import hookimpl

    plugin.register_tasks = hookimpl(plugin.register_tasks)  # type: ignore[attr-defined]
    host = PluginHost.discover(entry_points=False, extra=[plugin])
    record = next(r for r in host.records if r.module == "acme_bad")
    assert record.errors == ["register_tasks: Bad.type_version must be a whole number >= 1"]


FLOW = """\
id: greet
namespace: demo
tasks:
  - id: old
    type: versioned.Greet
    version: {version}
    name: Ada
"""


def test_a_flow_picks_a_version_and_an_unknown_one_is_located(host: PluginHost) -> None:
    flow = load_flow(FLOW.format(version=1), registry=host.registry, file="f.yaml")
    assert flow.tasks[0].type_info.cls is PLUGIN.GreetV1
    with pytest.raises(ValidationError) as caught:
        load_flow(FLOW.format(version=7), registry=host.registry, file="f.yaml")
    assert str(caught.value).splitlines()[-1].strip() == (
        "f.yaml:6:14: tasks[0].version: type 'versioned.Greet' has no version 7; "
        "its versions are 1, 2"
    )
    # Version 2 has no `name`: the properties are checked against the version asked for.
    with pytest.raises(ValidationError, match=r"tasks\[0\]"):
        load_flow(FLOW.format(version=2), registry=host.registry, file="f.yaml")
    with pytest.raises(ValidationError, match=r"f.yaml:6:14: tasks\[0\].version"):
        load_flow(FLOW.format(version="zero"), registry=host.registry, file="f.yaml")


def test_the_reference_shows_every_version(host: PluginHost) -> None:
    registry = host.registry
    v1 = type_markdown(registry.resolve("versioned.Greet", 1), registry.versions("versioned.Greet"))  # type: ignore[arg-type]
    assert v1.startswith(
        "## `versioned.Greet` version 1\n\n"
        "Versions: 1, 2 (latest). A flow picks one with `version: N` on the task.\n"
    )
    assert "| `name` | string | yes |" in v1
    generated = pages(host)
    page = generated["-.md"]
    assert page.index("## `versioned.Greet` version 1") < page.index(
        "## `versioned.Greet` version 2"
    )
    assert (
        "- `versioned.Greet` (task, versions 1, 2): Greet someone, politely"
        in generated["index.md"]
    )
    # A type with one version reads as before.
    assert "## `plait.core.Log`\n" in generated["plait.md"]


def test_plugins_doc_version_option() -> None:
    proc = subprocess.run(
        [str(PLAIT), "plugins", "doc", "plait.core.Log", "--version", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: --version: type 'plait.core.Log' has no version 2; its versions are 1"
    )
