"""Key-value store tasks: Set, Get, Delete, GetKeys (Kestra's io.kestra.plugin.core.kv.*)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from plait_sdk import Example, Output, RunContext, Task, TaskFailure


class KVType(StrEnum):
    STRING = "STRING"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    DATE = "DATE"
    DURATION = "DURATION"
    JSON = "JSON"


class Set(Task):
    """Store a value in the key-value store (the flow's namespace unless ``namespace`` is set)."""

    type_name: ClassVar[str] = "plait.core.kv.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Set",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Remember when the flow last ran, for a week",
            code=(
                "id: remember\ntype: plait.core.kv.Set\nkey: last_run\n"
                'value: "{{ execution.startDate }}"\nkvType: DATETIME\nttl: P7D'
            ),
        ),
    )

    key: str
    """The key: letters, digits, '_', '.', '-', '/'."""
    value: Any
    """The value; its type is inferred unless ``kvType`` says."""
    namespace: str | None = None
    """Store in this namespace instead of the flow's."""
    overwrite: bool = True
    """Replace an existing value; when false, an existing key fails the task."""
    ttl: timedelta | None = None
    """Expire the key after this duration (ISO-8601, e.g. PT1H)."""
    kv_type: KVType | None = None
    """STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION or JSON."""

    async def run(self, ctx: RunContext) -> None:
        await ctx.kv.set(
            self.key,
            self.value,
            namespace=self.namespace,
            ttl=self.ttl,
            type=self.kv_type.value if self.kv_type else None,
            overwrite=self.overwrite,
        )


class GetOutput(Output):
    value: Any = None
    """The value (``null`` when the key is missing)."""


class Get(Task):
    """Read a value from the key-value store."""

    type_name: ClassVar[str] = "plait.core.kv.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Get",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(title="Read a value", code="id: read\ntype: plait.core.kv.Get\nkey: last_run"),
    )

    key: str
    """The key to read."""
    namespace: str | None = None
    """Read from this namespace instead of the flow's."""
    error_on_missing: bool = False
    """Fail the task when the key does not exist (or expired)."""

    async def run(self, ctx: RunContext) -> GetOutput:
        value = await ctx.kv.get(self.key, namespace=self.namespace)
        if value is None and self.error_on_missing:
            raise TaskFailure(
                f"no KV key '{self.key}' in namespace {self.namespace or ctx.namespace}"
            )
        return GetOutput(value=value)


class DeleteOutput(Output):
    deleted: bool = False
    """Whether the key existed."""


class Delete(Task):
    """Delete a key from the key-value store."""

    type_name: ClassVar[str] = "plait.core.kv.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Delete",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(title="Forget a key", code="id: forget\ntype: plait.core.kv.Delete\nkey: cursor"),
    )

    key: str
    """The key to delete."""
    namespace: str | None = None
    """Delete from this namespace instead of the flow's."""
    error_on_missing: bool = False
    """Fail the task when the key does not exist."""

    async def run(self, ctx: RunContext) -> DeleteOutput:
        deleted = await ctx.kv.delete(self.key, namespace=self.namespace)
        if not deleted and self.error_on_missing:
            raise TaskFailure(
                f"no KV key '{self.key}' in namespace {self.namespace or ctx.namespace}"
            )
        return DeleteOutput(deleted=deleted)


class GetKeysOutput(Output):
    keys: list[str] = []
    """The live keys, sorted."""


class GetKeys(Task):
    """List the keys of a namespace, optionally by prefix."""

    type_name: ClassVar[str] = "plait.core.kv.GetKeys"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.GetKeys",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Keys by prefix", code="id: keys\ntype: plait.core.kv.GetKeys\nprefix: user_"
        ),
    )

    prefix: str = ""
    """Only keys starting with this."""
    namespace: str | None = None
    """List this namespace instead of the flow's."""

    async def run(self, ctx: RunContext) -> GetKeysOutput:
        return GetKeysOutput(keys=await ctx.kv.keys(self.prefix, namespace=self.namespace))


KV_TASKS = (Set, Get, Delete, GetKeys)
