"""A connector contributing blueprints for its own service through register_blueprints: one it
can run, one needing a plugin that is not installed."""

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
