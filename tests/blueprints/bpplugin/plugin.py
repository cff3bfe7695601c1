"""A connector contributing blueprints for its own service through register_blueprints: one it
can run, one needing a plugin that is not installed, and one calling that one as a subflow
while its own metadata forgets the plugins the called one needs."""

from __future__ import annotations

from pathlib import Path

from plait_sdk import Blueprint, RegisterBlueprint, hookimpl

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_blueprints(register: RegisterBlueprint) -> None:
    register(Path(__file__).parent / "blueprints")
    register(
        Blueprint(
            id="acme.needs-crm",
            title="Needs a CRM plugin",
            version="2.1.0",
            plugins={"plait-acme-crm": "1.4.0", "plait-http": "99.0"},
            flow="id: needs-crm\nnamespace: acme\ninputs: []\ntasks:\n"
            "  - id: log\n    type: plait.core.Log\n    message: hi\n",
        )
    )
    register(
        Blueprint(
            id="acme.calls-crm",
            title="Calls the CRM blueprint",
            version="1.0.0",
            flow="id: calls-crm\nnamespace: acme\ninputs: []\ntasks:\n"
            "  - id: crm\n    type: plait.core.Subflow\n    blueprint: acme.needs-crm\n",
        )
    )
