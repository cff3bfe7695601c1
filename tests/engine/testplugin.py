"""Task types used only by the engine tests, registered through the real plugin hooks."""

from __future__ import annotations

import asyncio
import codecs
from collections import defaultdict
from typing import Any, ClassVar

from plait_sdk import (
    Output,
    RegisterTask,
    RegisterTemplateExtension,
    RunContext,
    Task,
    TaskFailure,
    hookimpl,
)

#: What the tasks did, by key: tests read it to see exactly which attempts ran.
CALLS: dict[str, list[Any]] = defaultdict(list)
#: Concurrency probe: the current and highest number of Probe tasks running at once.
GAUGE = {"now": 0, "max": 0}
#: Gates a Gate task waits on, by name.
GATES: dict[str, asyncio.Event] = {}


def reset() -> None:
    CALLS.clear()
    GAUGE.update(now=0, max=0)
    GATES.clear()


class ValueOutput(Output):
    value: Any = None


class Record(Task):
    """Append ``value`` to CALLS[key] and return it."""

    type_name: ClassVar[str] = "test.Record"
    key: str = "record"
    value: Any = None

    async def run(self, ctx: RunContext) -> ValueOutput:
        CALLS[self.key].append(self.value)
        return ValueOutput(value=self.value)


class Flaky(Task):
    """Fail the first ``failures`` attempts (counted per key), then succeed."""

    type_name: ClassVar[str] = "test.Flaky"
    key: str
    failures: int = 1

    async def run(self, ctx: RunContext) -> ValueOutput:
        CALLS[self.key].append(ctx.attempt)
        if len(CALLS[self.key]) <= self.failures:
            raise TaskFailure(f"flaky failure {len(CALLS[self.key])}")
        return ValueOutput(value=len(CALLS[self.key]))


class Probe(Task):
    """Hold a slot for ``seconds`` while counting how many Probes run at once."""

    type_name: ClassVar[str] = "test.Probe"
    seconds: float = 0.02

    async def run(self, ctx: RunContext) -> None:
        GAUGE["now"] += 1
        GAUGE["max"] = max(GAUGE["max"], GAUGE["now"])
        try:
            await asyncio.sleep(self.seconds)
        finally:
            GAUGE["now"] -= 1


class Gate(Task):
    """Wait until the test opens GATES[name]; records a cancellation."""

    type_name: ClassVar[str] = "test.Gate"
    name: str

    async def run(self, ctx: RunContext) -> None:
        event = GATES.setdefault(self.name, asyncio.Event())
        CALLS[f"gate:{self.name}"].append("started")
        try:
            await event.wait()
        except asyncio.CancelledError:
            CALLS[f"gate:{self.name}"].append("cancelled")
            raise


class Boom(Task):
    """Raise an unexpected exception (not a TaskFailure)."""

    type_name: ClassVar[str] = "test.Boom"

    async def run(self, ctx: RunContext) -> None:
        raise RuntimeError("kaboom")


class UseSecret(Task):
    """Read a secret, log it (the log must be masked) and return a value derived from it."""

    type_name: ClassVar[str] = "test.UseSecret"
    name: str

    async def run(self, ctx: RunContext) -> ValueOutput:
        value = await ctx.secret(self.name)
        ctx.log.info("the secret is %s", value)
        return ValueOutput(value=value)


class WriteFile(Task):
    """Write a file in the working directory and record the directory."""

    type_name: ClassVar[str] = "test.WriteFile"
    name: str
    content: str

    async def run(self, ctx: RunContext) -> ValueOutput:
        (ctx.working_dir / self.name).write_text(self.content)
        return ValueOutput(value=str(ctx.working_dir))


class ReadFile(Task):
    """Read a file from the working directory."""

    type_name: ClassVar[str] = "test.ReadFile"
    name: str

    async def run(self, ctx: RunContext) -> ValueOutput:
        return ValueOutput(value=(ctx.working_dir / self.name).read_text())


class Blocking(Task):
    """Blocking code run in a thread through ctx.run_blocking."""

    type_name: ClassVar[str] = "test.Blocking"
    seconds: float = 0.05

    async def run(self, ctx: RunContext) -> ValueOutput:
        import threading
        import time

        def work() -> str:
            time.sleep(self.seconds)
            return threading.current_thread().name

        return ValueOutput(value=await ctx.run_blocking(work))


class Store(Task):
    """Put ``content`` (bytes when ``binary``) in internal storage; output its URI."""

    type_name: ClassVar[str] = "test.Store"
    name: str = "data.txt"
    content: str = ""
    repeat: int = 1
    binary: bool = False

    async def run(self, ctx: RunContext) -> ValueOutput:
        data = b"\xff\xfe" if self.binary else (self.content * self.repeat).encode()
        return ValueOutput(value=await ctx.storage.put(self.name, data))


class Chatty(Task):
    """Log ``lines`` lines of ``width`` characters (``ctx.log.info``), then fail if ``fail``
    (with a message of ``width`` characters)."""

    type_name: ClassVar[str] = "test.Chatty"
    lines: int = 1
    width: int = 10
    fail: bool = False

    async def run(self, ctx: RunContext) -> None:
        for n in range(self.lines):
            ctx.log.info("%s", f"{n}:".ljust(self.width, "x"))
        if self.fail:
            raise TaskFailure("f" * self.width)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    for cls in (
        Record,
        Flaky,
        Probe,
        Gate,
        Boom,
        UseSecret,
        WriteFile,
        ReadFile,
        Blocking,
        Store,
        Chatty,
    ):
        register(cls)


@hookimpl
def register_template_extensions(register: RegisterTemplateExtension) -> None:
    register("rot13", lambda text: codecs.encode(str(text), "rot13"), kind="filter")
    register("shout", lambda text: str(text).upper() + "!")
