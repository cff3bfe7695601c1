"""Entry point of plait-http: registers its task and trigger types with Plait."""

from __future__ import annotations

from plait_sdk import RegisterTask, hookimpl

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """No task types yet."""
