"""Entry point of plait-s3: registers its task and trigger types, closes clients on shutdown."""

from __future__ import annotations

from plait_sdk import RegisterTask, RegisterTrigger, hookimpl

from plait_s3._client import POOL
from plait_s3.tasks import TASKS
from plait_s3.trigger import Trigger

PLAIT_PLUGIN_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """Upload, Download, List, Delete, DeleteList, Copy and CreateBucket."""
    for task in TASKS:
        register(task)


@hookimpl
def register_triggers(register: RegisterTrigger) -> None:
    """The polling trigger on new objects."""
    register(Trigger)


@hookimpl
async def plait_shutdown() -> None:
    """Close every S3 client this process opened."""
    await POOL.close()
