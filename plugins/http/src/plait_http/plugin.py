"""Entry point of plait-http: registers its task and trigger types with Plait.

Each task run opens and closes its own HTTP client, so the plugin holds no connection between
runs and needs no ``plait_startup`` / ``plait_shutdown`` hook.
"""

from __future__ import annotations

from plait_sdk import RegisterTask, RegisterTrigger, hookimpl

from plait_http._tasks import Download, Request
from plait_http._trigger import Trigger

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """``plait.http.Request`` and ``plait.http.Download`` (and their Kestra names)."""
    register(Request)
    register(Download)


@hookimpl
def register_triggers(register: RegisterTrigger) -> None:
    """``plait.http.Trigger`` (and its Kestra names)."""
    register(Trigger)
