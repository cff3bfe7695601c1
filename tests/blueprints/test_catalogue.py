"""The catalogue: a plugin's blueprints through the hook, search, and a Subflow naming a
blueprint (validated: known, version range, plugins installed, inputs; then run)."""

from __future__ import annotations

import textwrap

import pytest
from plait.blueprints import describe, find, search
from plait.flows import validate_flow_text
from plait.plugins import PluginHost
from plait_sdk import Blueprint

from .bpplugin import plugin as acme_plugin


@pytest.fixture(scope="module")
def acme_host() -> PluginHost:
    return PluginHost.discover(extra=[acme_plugin])


def _problems(host: PluginHost, task: str) -> list[str]:
    source = "id: caller\nnamespace: company.team\ntasks:\n" + textwrap.indent(
        textwrap.dedent(task).strip() + "\n", "  "
    )
    return [str(p) for p in validate_flow_text(source, registry=host.registry, file="caller.yaml")]


def test_a_plugin_contributes_blueprints_through_the_hook(acme_host: PluginHost) -> None:
    entry = find(acme_host.registry, "acme.greet")
    assert entry.origin.plugin.endswith("bpplugin.plugin")
    detail = describe(entry)
    assert (detail.version, detail.tags) == ("1.2.0", ["acme", "demo"])
    assert [(i.id, i.type, i.required) for i in detail.inputs] == [("name", "STRING", True)]
    assert [o.id for o in detail.outputs] == ["greeting"]
    assert [e.blueprint.id for e in search(acme_host.registry, tag="ACME")] == ["acme.greet"]
    assert [e.blueprint.id for e in search(acme_host.registry, word="GREETING")] == ["acme.greet"]
    assert "etl.http-to-postgres" in {e.blueprint.id for e in search(acme_host.registry, tag="etl")}


def test_a_second_registration_of_an_id_is_reported(acme_host: PluginHost) -> None:
    again = PluginHost.discover()
    record = again.records[0]
    callback = again._callbacks(record)["register_blueprints"]
    callback(Blueprint(id="ops.error-notification", title="x", flow="id: a\nnamespace: b\n"))
    assert record.errors == [
        "blueprint 'ops.error-notification' is registered twice by plait 0.1.0"
    ]


def test_subflow_by_blueprint_problems_say_what_to_do(acme_host: PluginHost) -> None:
    assert _problems(acme_host, """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.greet
          blueprintVersion: ">=2,<3"
          inputs: {name: ada}
    """) == [
        "caller.yaml:7:23: tasks[0].blueprintVersion: blueprint acme.greet is version 1.2.0, "
        "outside the range >=2,<3 asked for: install a Plait (or plugin) release shipping a "
        "matching version, or change the range"
    ]  # fmt: skip
    missing = _problems(
        acme_host,
        """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.needs-crm
    """,
    )
    assert missing[0] == (
        "caller.yaml:6:16: tasks[0].blueprint: blueprint acme.needs-crm needs the plugin "
        "plait-acme-crm>=1.4.0, which is not installed: pip install 'plait-acme-crm>=1.4.0'"
    )
    assert "needs plait-http>=99.0 but 0.1.0 is installed: pip install --upgrade" in missing[1]
    # What the blueprints it calls need is named too, even when its metadata forgets them.
    assert _problems(acme_host, """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.calls-crm
    """) == [
        "caller.yaml:6:16: tasks[0].blueprint: blueprint acme.calls-crm needs the plugin "
        "plait-acme-crm>=1.4.0 (for the blueprint acme.needs-crm it calls), which is not "
        "installed: pip install 'plait-acme-crm>=1.4.0'",
        "caller.yaml:6:16: tasks[0].blueprint: blueprint acme.calls-crm needs plait-http>=99.0 "
        "(for the blueprint acme.needs-crm it calls) but 0.1.0 is installed: pip install "
        "--upgrade 'plait-http>=99.0'",
    ]  # fmt: skip
    assert _problems(acme_host, """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.gret
    """) == [
        "caller.yaml:6:16: tasks[0].blueprint: unknown blueprint 'acme.gret'; "
        "did you mean 'acme.greet'?"
    ]  # fmt: skip
    wrong_inputs = _problems(
        acme_host,
        """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.greet
          inputs: {nme: ada}
    """,
    )
    assert wrong_inputs == [
        "caller.yaml:7:13: tasks[0].inputs: blueprint acme.greet needs the input 'name'",
        "caller.yaml:7:14: tasks[0].inputs.nme: blueprint acme.greet has no input 'nme'; "
        "did you mean 'name'?",
    ]
    both = _problems(
        acme_host,
        """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.greet
          namespace: acme
          flowId: greet
    """,
    )
    assert "give blueprint, or namespace and flowId, not both" in both[0]
    bad_range = _problems(
        acme_host,
        """
        - id: call
          type: plait.core.Subflow
          blueprint: acme.greet
          blueprintVersion: "about 1"
    """,
    )
    assert "blueprintVersion 'about 1' is not a range such as '>=1.0,<2'" in bad_range[0]
