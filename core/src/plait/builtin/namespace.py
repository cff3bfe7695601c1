"""Namespace files tasks: UploadFiles, DownloadFiles, DeleteFiles (Kestra's
io.kestra.plugin.core.namespace.*), over ``ctx.namespace_files``."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

from plait_sdk import Example, Output, RunContext, Task, TaskFailure, UserError
from pydantic import BeforeValidator, Field, field_validator

from plait.nsfiles import check_path, matcher

_K = "io.kestra.plugin.core.namespace."
#: Characters a storage name refuses (a namespace file name may have spaces, accents...).
_SAFE = re.compile(r"[^A-Za-z0-9._@+=,~-]")


def _one_or_many(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a rendered "{{ [...] | json }}"
            try:
                return json.loads(text)
            except ValueError:
                pass
        return [value]
    return value


#: One pattern or a list of them (Kestra takes both).
Patterns = Annotated[list[str], BeforeValidator(_one_or_many)]


class Conflict(StrEnum):
    OVERWRITE = "OVERWRITE"
    ERROR = "ERROR"
    SKIP = "SKIP"


def _working_files(root: Path) -> dict[str, Path]:
    """Every file under the working directory by relative path (blocking)."""
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".plait-")
    }


class UploadFiles(Task):
    """Upload files of the working directory (`files`: globs) or of internal storage (`filesMap`:
    destination path -> URI) as namespace files."""

    type_name: ClassVar[str] = "plait.core.namespace.UploadFiles"
    aliases: ClassVar[tuple[str, ...]] = (_K + "UploadFiles",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Store a file written by an earlier task as a namespace file",
            code=(
                "id: upload\ntype: plait.core.namespace.UploadFiles\n"
                'namespace: "{{ flow.namespace }}"\n'
                "filesMap:\n"
                '  scripts/etl.py: "{{ outputs.write.uri }}"'
            ),
        ),
    )

    namespace: str | None = None
    """The namespace to upload into (the flow's when unset)."""
    files: Patterns = Field(default_factory=list)
    """Glob patterns (`glob:**/*.sql`, `data/*.csv`) or `regex:` patterns of files of the
    working directory, uploaded under `destination` with their relative paths."""
    files_map: dict[str, str] = Field(default_factory=dict)
    """Destination path -> internal-storage URI (`plait:///...`) of each file to upload."""
    destination: str = "/"
    """The namespace folder the `files` go to."""
    conflict: Conflict = Conflict.OVERWRITE
    """When a namespace file exists already: OVERWRITE (a new version), ERROR, or SKIP."""

    @field_validator("files_map", mode="before")
    @classmethod
    def _map(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("filesMap must be a map of path to URI") from None
        return value

    async def run(self, ctx: RunContext) -> None:
        if not self.files and not self.files_map:
            raise UserError("UploadFiles needs `files` or `filesMap`")
        ns = self.namespace or ctx.namespace
        store = ctx.namespace_files
        existing = set(await store.list(namespace=ns))
        base = check_path(self.destination, directory=True)
        todo: list[tuple[str, Path | str]] = []
        if self.files:
            wanted = matcher(self.files)
            found = await ctx.run_blocking(_working_files, ctx.working_dir)
            todo += [
                (f"{base}/{rel}" if base else rel, p) for rel, p in found.items() if wanted(rel)
            ]
        todo += [(check_path(dest), uri) for dest, uri in self.files_map.items()]
        for dest, source in todo:
            path = check_path(dest)
            if path in existing and self.conflict is not Conflict.OVERWRITE:
                if self.conflict is Conflict.ERROR:
                    raise TaskFailure(f"namespace file {path!r} exists in {ns} (conflict: ERROR)")
                ctx.log.info("skipped %s: it exists (conflict: SKIP)", path)
                continue
            if isinstance(source, Path):
                data = await ctx.run_blocking(source.read_bytes)
            else:
                data = await ctx.storage.read_bytes(source)
            version = await store.write(path, data, namespace=ns)
            ctx.log.info("uploaded %s to namespace %s (version %d)", path, ns, version)


class FilesOutput(Output):
    files: dict[str, str] = Field(default_factory=dict)
    """For DownloadFiles: the internal-storage URI of each downloaded file, by its namespace
    path. For DeleteFiles: the deleted paths, each mapped to its namespace."""


class DownloadFiles(Task):
    """Download namespace files into internal storage (and into the working directory, under
    `destination`), so that later tasks can use them."""

    type_name: ClassVar[str] = "plait.core.namespace.DownloadFiles"
    aliases: ClassVar[tuple[str, ...]] = (_K + "DownloadFiles",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Download every namespace file of a namespace",
            code="id: download\ntype: plait.core.namespace.DownloadFiles\nnamespace: tutorial\n"
            'files:\n  - "**"',
        ),
    )

    namespace: str | None = None
    """The namespace to download from (the flow's when unset)."""
    files: Patterns = Field(min_length=1)
    """Globs (`**input.txt`, `scripts/**`), `regex:` patterns or paths of namespace files."""
    destination: str = ""
    """The folder of the working directory the files are written to."""

    async def run(self, ctx: RunContext) -> FilesOutput:
        ns = self.namespace or ctx.namespace
        store = ctx.namespace_files
        wanted = matcher(self.files)
        base = check_path(self.destination, directory=True)
        out: dict[str, str] = {}
        for path in await store.list(namespace=ns):
            if not wanted(path):
                continue
            data = await store.read(path, namespace=ns)
            local = ctx.working_dir.joinpath(*(f"{base}/{path}" if base else path).split("/"))
            await ctx.run_blocking(local.parent.mkdir, parents=True, exist_ok=True)
            await ctx.run_blocking(local.write_bytes, data)
            name = "/".join(_SAFE.sub("_", part) for part in path.split("/"))
            out[path] = await ctx.storage.put(name, data)
        return FilesOutput(files=out)


class DeleteFiles(Task):
    """Delete namespace files matching globs, `regex:` patterns or paths."""

    type_name: ClassVar[str] = "plait.core.namespace.DeleteFiles"
    aliases: ClassVar[tuple[str, ...]] = (_K + "DeleteFiles",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Delete the uploaded files of a namespace",
            code="id: delete\ntype: plait.core.namespace.DeleteFiles\nnamespace: tutorial\n"
            'files:\n  - "**.upl"',
        ),
    )

    namespace: str | None = None
    """The namespace to delete from (the flow's when unset)."""
    files: Patterns = Field(min_length=1)
    """Globs, `regex:` patterns or paths of the namespace files to delete."""
    delete_parent_folder: bool = False
    """Accepted for Kestra: folders exist only through their files here, so an emptied folder
    is gone already."""

    async def run(self, ctx: RunContext) -> FilesOutput:
        ns = self.namespace or ctx.namespace
        store = ctx.namespace_files
        wanted = matcher(self.files)
        out: dict[str, str] = {}
        for path in await store.list(namespace=ns):
            if wanted(path) and await store.delete(path, namespace=ns):
                out[path] = ns
        return FilesOutput(files=out)


NAMESPACE_TASKS = (UploadFiles, DownloadFiles, DeleteFiles)
