"""Every blueprint of registry/blueprints: complete metadata, documentation, a valid flow, a
valid example call, and a test of its own that runs it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.version import Version
from plait.blueprints import describe, find, instantiate, library, library_path
from plait.flows import all_task_specs, load_flow, validate_flow_text
from plait.plugins import PluginHost, load_blueprint
from plait_sdk import UserError, ValidationError

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parents[1]
#: The blueprints the connectors of this repository ship for their own service (package data
#: ``plugins/<name>/src/<package>/blueprints/<id>/``), by id -> distribution.
CONNECTOR_BLUEPRINTS = {
    meta.parent.name: tomllib.loads((meta.parents[4] / "pyproject.toml").read_text("utf-8"))[
        "project"
    ]["name"]
    for meta in sorted(ROOT.glob("plugins/*/src/*/blueprints/*/blueprint.yaml"))
}
IDS = sorted([b.id for b in library()] + list(CONNECTOR_BLUEPRINTS))


def test_the_library_is_found_and_registered_through_the_hook(host: PluginHost) -> None:
    assert library_path().name == "blueprints"
    assert len(IDS) >= 24  # the library the issue asks for
    assert len(set(IDS)) == len(IDS)
    for blueprint in library():
        entry = find(host.registry, blueprint.id)
        assert entry.origin.plugin == "core"  # the core registers like any connector


def test_each_connector_ships_its_own_blueprints_through_the_hook(host: PluginHost) -> None:
    assert CONNECTOR_BLUEPRINTS == {"db.incremental-copy-postgres-to-mariadb": "plait-db"}
    for blueprint_id, distribution in CONNECTOR_BLUEPRINTS.items():
        entry = find(host.registry, blueprint_id)
        assert entry.origin.distribution == distribution
        # A connector's blueprint needs no connector but its own (a blueprint that also needs
        # another stays in the core's library, where every connector it uses is declared).
        assert set(entry.blueprint.plugins) == {distribution}


@pytest.mark.parametrize("blueprint_id", IDS)
def test_each_blueprint_is_complete_and_valid(host: PluginHost, blueprint_id: str) -> None:
    entry = find(host.registry, blueprint_id)
    bp = entry.blueprint
    # Documentation: a real description, tags, every input and output described.
    assert len(bp.description.split()) >= 25, "the description says what, when and needs"
    assert bp.tags
    detail = describe(entry)
    assert detail.inputs, "a blueprint takes inputs"
    assert detail.outputs, "a blueprint declares its outputs"
    for item in [*detail.inputs, *detail.outputs]:
        assert item.description, f"{item.id} has no description"
    # Every plugin distribution its flow uses is declared (and nothing else), with those of
    # the blueprints it calls as subflows (so "what to install" names them too).
    flow = load_flow(instantiate(bp, "company.team"), registry=host.registry)
    specs = all_task_specs([*flow.tasks, *flow.errors, *flow.finally_])
    used = {s.type_info.origin.distribution for s in specs}
    used |= {t.type_info.origin.distribution for t in flow.triggers}
    for called_id in {s.properties["blueprint"] for s in specs if s.properties.get("blueprint")}:
        called = find(host.registry, called_id)
        used |= set(called.blueprint.plugins) | {called.origin.distribution}
        for dist, minimum in called.blueprint.plugins.items():
            assert Version(bp.plugins.get(dist, "0")) >= Version(minimum), (
                f"{bp.id} calls {called_id}, which needs {dist}>={minimum}"
            )
    assert set(bp.plugins) == used - {"plait"}, f"{bp.id} declares {sorted(bp.plugins)}"
    # The example is a Subflow call of this blueprint that validates in a flow.
    example = yaml.safe_load(bp.example)
    assert example["type"] == "plait.core.Subflow"
    assert example["blueprint"] == bp.id
    first, *rest = bp.example.strip().splitlines()
    caller = "id: caller\nnamespace: company.team\ntasks:\n  - " + first + "\n"
    caller += "".join(f"    {line}\n" for line in rest)
    assert validate_flow_text(caller, registry=host.registry) == []
    # A test of its own, named after it, that runs it.
    test_file = TESTS / f"test_{re.sub(r'[.-]', '_', bp.id)}.py"
    assert test_file.is_file(), f"{bp.id} has no test ({test_file.name})"
    assert "async def test_" in test_file.read_text("utf-8")


def test_blueprint_metadata_problems_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "etl.broken"
    bad.mkdir()
    (bad / "flow.yaml").write_text("id: x\nnamespace: y\ntasks: []\n")
    (bad / "blueprint.yaml").write_text("id: etl.broken\nversion: one\n")
    with pytest.raises(ValidationError) as caught:
        load_blueprint(bad)
    shown = str(caught.value)
    assert f"{bad / 'blueprint.yaml'}: title: Field required" in shown
    assert "version: Value error, 'one' is not a version" in shown
    (bad / "blueprint.yaml").write_text("id: etl.other\ntitle: T\n")
    with pytest.raises(UserError, match="differs from its directory"):
        load_blueprint(bad)
