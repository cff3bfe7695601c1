"""Internal-storage tasks: Write, Concat, Split, Size, Delete (Kestra's core.storage.*).

Files are streamed, never held whole in memory: Concat copies chunk by chunk, Split reads
the file line by line from a local copy in the task's working directory (in a thread) and
stores each part as it is finished.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from plait_sdk import Example, Output, RunContext, Task, TaskFailure
from pydantic import Field, field_validator, model_validator


def _aliases(name: str) -> tuple[str, ...]:
    return (f"io.kestra.plugin.core.storage.{name}", f"io.kestra.core.tasks.storages.{name}")


class UriOutput(Output):
    uri: str
    """The created file's internal-storage URI."""


class Write(Task):
    """Write text to a new file in internal storage."""

    type_name: ClassVar[str] = "plait.core.storage.Write"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Write")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Store a CSV for the next tasks",
            code='id: write\ntype: plait.core.storage.Write\ncontent: "a,b\\n1,2\\n"\n'
            "extension: .csv",
        ),
    )

    content: str
    """The file's content (UTF-8)."""
    extension: str = ".tmp"
    """The file name's extension, such as ``.csv``."""

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: str) -> str:
        return _checked_extension(value)

    async def run(self, ctx: RunContext) -> UriOutput:
        return UriOutput(uri=await ctx.storage.put(f"write{self.extension}", self.content.encode()))


class Concat(Task):
    """Concatenate internal-storage files, in order, into a new file."""

    type_name: ClassVar[str] = "plait.core.storage.Concat"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Concat")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Join two extracts, one line between them",
            code=(
                'id: concat\ntype: plait.core.storage.Concat\nseparator: "\\n"\nfiles:\n'
                '  - "{{ outputs.first.uri }}"\n  - "{{ outputs.second.uri }}"'
            ),
        ),
    )

    files: list[str] | str
    """The files' URIs: a list, or a JSON array in text (as a template may give)."""
    separator: str | None = None
    """Written after each file; none by default."""
    extension: str = ".tmp"
    """The new file's extension."""

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: str) -> str:
        return _checked_extension(value)

    async def run(self, ctx: RunContext) -> UriOutput:
        uris = self._uris()
        separator = self.separator.encode() if self.separator is not None else b""

        async def chunks() -> Any:
            for uri in uris:
                async for chunk in ctx.storage.open(uri):
                    yield chunk
                if separator:
                    yield separator

        return UriOutput(uri=await ctx.storage.put(f"concat{self.extension}", chunks()))

    def _uris(self) -> list[str]:
        if isinstance(self.files, list):
            return self.files
        try:
            parsed = json.loads(self.files)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(u, str) for u in parsed):
            raise TaskFailure(
                f"files: expected a list of URIs or a JSON array of them, got {self.files[:200]!r}"
            )
        return parsed


class SplitOutput(Output):
    uris: list[str]
    """The parts' URIs, in order."""


_BYTES = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


class Split(Task):
    """Split an internal-storage text file into parts, by size, rows, partitions or a pattern.

    Lines are never cut. ``bytes``: a new part starts once a part reaches that size. ``rows``:
    that many lines per part. ``partitions``: lines dealt round-robin into that many parts
    (empty ones dropped). ``regexPattern``: lines grouped by the pattern's first group, lines
    that do not match left out. Each line is written followed by ``separator``.
    """

    type_name: ClassVar[str] = "plait.core.storage.Split"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Split")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Batches of 1000 rows",
            code='id: split\ntype: plait.core.storage.Split\nfrom: "{{ outputs.extract.uri }}"\n'
            "rows: 1000",
        ),
    )

    from_: str = Field(alias="from")
    """The file to split (an internal-storage URI)."""
    bytes: str | None = None
    """Part size, such as ``10MB``, ``512KB`` or ``4096`` (bytes; units are powers of 1024)."""
    rows: int | None = Field(default=None, ge=1)
    """Lines per part."""
    partitions: int | None = Field(default=None, ge=1)
    """Number of parts."""
    regex_pattern: str | None = None
    """A regular expression whose first group's value names the part of each line."""
    separator: str = "\n"
    """Written after each line."""

    @model_validator(mode="after")
    def _one_way(self) -> Split:
        given = [
            k
            for k, v in (
                ("bytes", self.bytes),
                ("rows", self.rows),
                ("partitions", self.partitions),
                ("regexPattern", self.regex_pattern),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError("set exactly one of bytes, rows, partitions or regexPattern")
        if self.bytes is not None and _BYTES.match(self.bytes) is None:
            raise ValueError(f"bytes: expected a size such as 10MB or 4096, got {self.bytes!r}")
        if self.regex_pattern is not None:
            try:
                pattern = re.compile(self.regex_pattern)
            except re.error as error:
                raise ValueError(f"regexPattern: {error}") from None
            if pattern.groups < 1:
                raise ValueError("regexPattern needs a capture group: (...)")
        return self

    async def run(self, ctx: RunContext) -> SplitOutput:
        suffix = Path(self.from_.rsplit("/", 1)[-1]).suffix or ".tmp"
        folder = ctx.working_dir / "split"
        source = folder / f"source{suffix}"
        await ctx.run_blocking(folder.mkdir, parents=True, exist_ok=True)
        await ctx.storage.download(self.from_, source)
        parts = await ctx.run_blocking(self._split, source, folder, suffix)
        uris = []
        for index, part in enumerate(parts, start=1):
            uris.append(await ctx.storage.put(f"part-{index:05d}{suffix}", part))
        return SplitOutput(uris=uris)

    def _split(self, source: Path, folder: Path, suffix: str) -> list[Path]:
        parts: dict[Any, Path] = {}
        handles: dict[Any, Any] = {}
        limit_bytes = _size(self.bytes) if self.bytes is not None else None
        pattern = re.compile(self.regex_pattern) if self.regex_pattern else None
        current: Any = None
        filled = rows = 0
        count = 0

        def open_part(key: Any) -> Any:
            path = folder / f"part-{len(parts) + 1:05d}{suffix}"
            parts[key] = path
            handles[key] = path.open("wb")
            return handles[key]

        try:
            with source.open(encoding="utf-8", newline="") as lines:
                for raw in lines:
                    line = raw.rstrip("\r\n")
                    data = (line + self.separator).encode()
                    if pattern is not None:
                        found = pattern.search(line)
                        if found is None:
                            continue
                        key: Any = found.group(1)
                        out = handles.get(key) or open_part(key)
                    elif self.partitions is not None:
                        key = count % self.partitions
                        out = handles.get(key) or open_part(key)
                    else:
                        full = (limit_bytes is not None and filled >= limit_bytes) or (
                            self.rows is not None and rows >= self.rows
                        )
                        if current is None or full:
                            current = len(parts)
                            open_part(current)
                            filled = rows = 0
                        out = handles[current]
                    out.write(data)
                    filled += len(data)
                    rows += 1
                    count += 1
        except UnicodeDecodeError:
            raise TaskFailure(f"{self.from_} is not UTF-8 text") from None
        finally:
            for handle in handles.values():
                handle.close()
        return list(parts.values())


def _size(text: str) -> int:
    found = _BYTES.match(text)
    assert found is not None  # checked by the model
    unit = found.group(2).upper() if found.group(2) else None
    return int(found.group(1)) * _UNITS[unit]


class ItemSplitOutput(Output):
    splits: str
    """A file listing the batch URIs, one per line (Kestra's output)."""
    uris: list[str]
    """The batch URIs, in order."""


class ForEachItemSplit(Task):
    """Internal (part of ForEachItem): split its items into batch files.

    Kestra's precedence: ``regexPattern``, then ``bytes``, then ``partitions``, else ``rows``.
    """

    type_name: ClassVar[str] = "plait.core.ForEachItemSplit"

    items: str
    """The file of items (an internal-storage URI)."""
    rows: int = Field(default=1, ge=1)
    bytes: str | None = None
    partitions: int | None = Field(default=None, ge=1)
    separator: str = "\n"
    regex_pattern: str | None = None

    async def run(self, ctx: RunContext) -> ItemSplitOutput:
        if not self.items.startswith("plait://"):
            raise TaskFailure(
                f"items: expected an internal storage URI (plait:///...), got {self.items[:200]!r}"
            )
        way: dict[str, Any] = {"rows": self.rows}
        for key, value in (
            ("regexPattern", self.regex_pattern),
            ("bytes", self.bytes),
            ("partitions", self.partitions),
        ):
            if value is not None:
                way = {key: value}
                break
        split = Split.model_validate({"from": self.items, "separator": self.separator, **way})
        uris = (await split.run(ctx)).uris
        listing = await ctx.storage.put("splits.txt", "\n".join(uris).encode())
        return ItemSplitOutput(splits=listing, uris=uris)


class ItemMergeOutput(Output):
    subflow_outputs: str | None = None
    """A JSON-lines file: each subflow execution's outputs, in batch order (none: no batch)."""


class ForEachItemMerge(Task):
    """Internal (part of ForEachItem): gather the subflow executions' outputs in one file.

    Its ``outputs`` are given by the engine (the subflow runs' outputs in batch order), not
    written in the flow.
    """

    type_name: ClassVar[str] = "plait.core.ForEachItemMerge"

    outputs: list[Any] = Field(default_factory=list)

    async def run(self, ctx: RunContext) -> ItemMergeOutput:
        if not self.outputs:
            return ItemMergeOutput()
        lines = "".join(
            json.dumps(o, separators=(",", ":"), default=str) + "\n" for o in self.outputs
        )
        return ItemMergeOutput(
            subflow_outputs=await ctx.storage.put("outputs.jsonl", lines.encode())
        )


class SizeOutput(Output):
    size: int
    """The file's size in bytes."""


class Size(Task):
    """The size of an internal-storage file."""

    type_name: ClassVar[str] = "plait.core.storage.Size"
    pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = _aliases("Size")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="How big",
            code='id: size\ntype: plait.core.storage.Size\nuri: "{{ outputs.dl.uri }}"',
        ),
    )

    uri: str
    """The file (an internal-storage URI)."""

    async def run(self, ctx: RunContext) -> SizeOutput:
        return SizeOutput(size=await ctx.storage.size(self.uri))


class DeleteOutput(Output):
    uri: str
    """The file asked for."""
    deleted: bool
    """Whether there was a file to delete."""


class Delete(Task):
    """Delete a file of this execution from internal storage."""

    type_name: ClassVar[str] = "plait.core.storage.Delete"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Delete")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Drop a temporary extract",
            code='id: drop\ntype: plait.core.storage.Delete\nuri: "{{ outputs.extract.uri }}"',
        ),
    )

    uri: str
    """The file (an internal-storage URI of this execution)."""
    error_on_missing: bool = False
    """Fail when there is no such file."""

    async def run(self, ctx: RunContext) -> DeleteOutput:
        deleted = await ctx.storage.delete(self.uri)
        if not deleted and self.error_on_missing:
            raise TaskFailure(f"no file {self.uri} to delete")
        return DeleteOutput(uri=self.uri, deleted=deleted)


class PurgeOutput(Output):
    uris: list[str]
    """The deleted files' internal-storage URIs."""


class PurgeCurrentExecutionFiles(Task):
    """Delete every file this execution wrote to internal storage (its inputs' files, its
    tasks' outputs); nothing to delete is not a failure."""

    type_name: ClassVar[str] = "plait.core.storage.PurgeCurrentExecutionFiles"
    # Kestra's older PurgeExecution is rewritten to this name (plait.flows._legacy).
    aliases: ClassVar[tuple[str, ...]] = _aliases("PurgeCurrentExecutionFiles")
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Clean up at the end of the execution",
            code="id: purge\ntype: plait.core.storage.PurgeCurrentExecutionFiles",
        ),
    )

    include_child_executions: bool | str = False
    """Accepted as Kestra accepts it; subflow executions keep their own files (Kestra's task
    does not purge them either)."""
    include_states: bool | str = False
    """Accepted as Kestra accepts it; Plait keeps no state files."""

    async def run(self, ctx: RunContext) -> PurgeOutput:
        try:
            uris = await ctx.storage.delete_execution_files()
        except NotImplementedError as error:
            raise TaskFailure(f"this internal storage cannot purge files: {error}") from None
        return PurgeOutput(uris=uris)


def _checked_extension(value: str) -> str:
    if not re.fullmatch(r"\.[A-Za-z0-9_-]{1,20}", value):
        raise ValueError(f"expected an extension such as .csv, got {value!r}")
    return value


STORAGE_TASKS = (
    Write,
    Concat,
    Split,
    Size,
    Delete,
    PurgeCurrentExecutionFiles,
    ForEachItemSplit,
    ForEachItemMerge,
)
