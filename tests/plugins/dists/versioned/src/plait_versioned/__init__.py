"""A plugin whose ``versioned.Greet`` changed: version 1 took ``name``, version 2 takes ``who``
and a ``punctuation``; flows written for version 1 keep working with ``version: 1``."""

from __future__ import annotations

from typing import ClassVar

from plait_sdk import Output, RunContext, Task, hookimpl

PLAIT_PLUGIN_API = ">=1.0,<2"


class GreetOutput(Output):
    greeting: str
    """The greeting."""


class GreetV1(Task):
    """Greet someone (the first version)."""

    type_name: ClassVar[str] = "versioned.Greet"
    type_version: ClassVar[int] = 1
    name: str
    """Who to greet."""

    async def run(self, ctx: RunContext) -> GreetOutput:
        return GreetOutput(greeting=f"hello {self.name}")


class GreetV2(Task):
    """Greet someone, politely."""

    type_name: ClassVar[str] = "versioned.Greet"
    type_version: ClassVar[int] = 2
    who: str
    """Who to greet."""
    punctuation: str = "!"
    """What ends the greeting."""

    async def run(self, ctx: RunContext) -> GreetOutput:
        return GreetOutput(greeting=f"Hello, {self.who}{self.punctuation}")


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(GreetV2)
    register(GreetV1)
