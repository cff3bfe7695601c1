"""What a ``WorkingDirectory`` puts in its directory before its first child runs, and keeps
after it: Kestra's ``inputFiles``, ``namespaceFiles``, ``cache`` ({patterns, ttl}) and
``outputFiles``.

The runner calls :meth:`WorkingDirectories.prepare` once per WorkingDirectory task run (when
its directory is made) and :meth:`WorkingDirectories.finish` when the execution ends; the
flowable itself (its children, their order) stays the executor's business.

:func:`collect_output_files` uploads the files matching ``outputFiles`` once the children
ended, before the WorkingDirectory run ends (the executor holds its end back for it), so the
tasks after it read ``outputs.<id>.outputFiles['<relative path>']``.

The cache is a zip of the files matching ``patterns``, stored in internal storage under
``<namespace>/<flow>/cache/<task id>.zip`` with the time it was made: a later execution of the
flow restores it into the new directory unless ``ttl`` has passed (Kestra's behaviour: the
cache is saved when the WorkingDirectory ends in SUCCESS).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from plait_sdk import StorageBackend, UserError, path_matcher

from plait.records import utcnow

#: The WorkingDirectory properties that need its directory prepared.
WORKDIR_PROPERTIES = frozenset({"inputFiles", "namespaceFiles", "cache"})
#: The member of a cache zip that says when it was made.
_STAMP = ".plait-cache.json"
_SCHEME = "plait:///"

Render = Callable[[Any], Awaitable[Any]]
#: Characters a storage key refuses, replaced in the name an output file is stored under.
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=,~-]")


@dataclass
class _Cache:
    key: str
    patterns: list[str]
    ttl: timedelta | None
    path: Path


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _inside(root: Path, name: str) -> Path:
    relative = PurePosixPath(name.replace("\\", "/"))
    if not name or "\x00" in name or relative.is_absolute() or ".." in relative.parts:
        raise UserError(f"WorkingDirectory inputFiles: {name!r} must stay in the directory")
    return root.joinpath(*relative.parts)


def _zip(root: Path, patterns: list[str], made: datetime) -> bytes:
    """The files of ``root`` matching ``patterns`` as a zip, stamped (blocking)."""
    keep = path_matcher(patterns)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_STAMP, json.dumps({"created": made.isoformat()}))
        for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = file.relative_to(root).as_posix()
            if keep(relative):
                archive.write(file, relative)
    return buffer.getvalue()


def _unzip(data: bytes, root: Path, ttl: timedelta | None, now: datetime) -> int | None:
    """Restore a cache zip into ``root``; ``None`` when it expired (blocking)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stamp = json.loads(archive.read(_STAMP))
        if ttl is not None and datetime.fromisoformat(stamp["created"]) + ttl < now:
            return None
        count = 0
        for member in archive.infolist():
            if member.filename == _STAMP or member.is_dir():
                continue
            target = _inside(root, member.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            count += 1
        return count


def _output_patterns(rendered: Any) -> list[str]:
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered) if rendered.lstrip().startswith("[") else [rendered]
        except ValueError:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise UserError("WorkingDirectory outputFiles must be a list of glob patterns")
    patterns = []
    for raw in rendered:
        pattern = str(raw).strip().replace("\\", "/").removeprefix("./")
        relative = PurePosixPath(pattern)
        if not pattern or "\x00" in pattern or relative.is_absolute() or ".." in relative.parts:
            raise UserError(
                f"WorkingDirectory outputFiles: {raw!r} must be a glob relative to the "
                "working directory"
            )
        patterns.append(pattern)
    return patterns


def _matching(root: Path, patterns: list[str]) -> dict[str, Path]:
    """The files under ``root`` matching ``patterns``, by relative path; a symbolic link
    leading out of the directory is left out (blocking)."""
    keep = path_matcher(patterns)
    base = root.resolve()
    found: dict[str, Path] = {}
    if not root.exists():
        return found
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root).as_posix()
        if file.is_file() and keep(relative) and file.resolve().is_relative_to(base):
            found[relative] = file
    return found


async def collect_output_files(
    properties: dict[str, Any],
    path: Path,
    render: Render,
    put: Callable[[str, Path], Awaitable[str]],
    run_blocking: Callable[..., Awaitable[Any]],
) -> dict[str, str] | None:
    """Upload the files of ``path`` matching the WorkingDirectory's ``outputFiles``; their
    ``plait:///`` URIs by relative path (empty when none matches), ``None`` without
    ``outputFiles``."""
    spec = properties.get("outputFiles")
    if spec is None:
        return None
    patterns = _output_patterns(await render(spec))
    if not patterns:
        return {}
    uris: dict[str, str] = {}
    for relative, file in (await run_blocking(_matching, path, patterns)).items():
        name = "/".join(_UNSAFE.sub("_", part) for part in relative.split("/"))
        uris[relative] = await put(f"outputFiles/{name}", file)
    return uris


class WorkingDirectories:
    """Sets up WorkingDirectory directories (files in, cache out) for one runner."""

    def __init__(
        self,
        backend: StorageBackend,
        run_blocking: Callable[..., Awaitable[Any]],
        namespace_files: Any = None,
    ) -> None:
        self._backend = backend
        self._blocking = run_blocking
        self._namespace_files = namespace_files
        #: Per execution: the caches to save, and the preparation of each directory (children
        #: of one WorkingDirectory that start together wait for the same one).
        self._caches: dict[str, dict[str, _Cache]] = {}
        self._prepared: dict[str, dict[str, asyncio.Task[None]]] = {}

    async def ensure(
        self, execution_id: str, run_id: str, prepare: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``prepare`` for the WorkingDirectory run ``run_id`` once; wait for it."""
        started = self._prepared.setdefault(execution_id, {})
        task = started.get(run_id)
        if task is None:
            task = started[run_id] = asyncio.ensure_future(prepare())
        await asyncio.shield(task)

    async def prepare(
        self,
        *,
        execution_id: str,
        run_id: str,
        properties: dict[str, Any],
        path: Path,
        render: Render,
        namespace: str,
        flow_id: str,
        task_id: str,
        read: Callable[[str], Awaitable[bytes]],
        log: Callable[[str], None],
    ) -> None:
        """Fill ``path`` for the WorkingDirectory run ``run_id``: its cache (if fresh), its
        namespace files, then its input files."""
        cache = properties.get("cache")
        if cache is not None:
            plan = await self._plan(await render(cache), path, namespace, flow_id, task_id)
            self._caches.setdefault(execution_id, {})[run_id] = plan
            await self._restore(plan, log)
        spec = properties.get("namespaceFiles")
        if spec is not None:
            await self._namespace(await render(spec), path, namespace)
        files = properties.get("inputFiles")
        if files is not None:
            rendered = await render(files)
            if isinstance(rendered, str):
                try:
                    rendered = json.loads(rendered)
                except ValueError:
                    rendered = None
            if not isinstance(rendered, dict):
                raise UserError("WorkingDirectory inputFiles must be a map of path to content")
            for name, value in rendered.items():
                target = _inside(path, str(name))
                text = value if isinstance(value, str) else json.dumps(value)
                if text.strip().startswith(_SCHEME) and not any(c.isspace() for c in text.strip()):
                    data = await read(text.strip())
                else:
                    data = text.encode("utf-8")
                await self._blocking(target.parent.mkdir, parents=True, exist_ok=True)
                await self._blocking(target.write_bytes, data)

    @staticmethod
    async def _plan(spec: Any, path: Path, namespace: str, flow_id: str, task_id: str) -> _Cache:
        from plait.flows import Input, InputType, coerce_value

        if not isinstance(spec, dict) or not spec.get("patterns"):
            raise UserError("WorkingDirectory cache needs `patterns` (a list of globs)")
        patterns = spec["patterns"]
        patterns = [patterns] if isinstance(patterns, str) else [str(p) for p in patterns]
        ttl = spec.get("ttl")
        if ttl is not None and not isinstance(ttl, timedelta):
            ttl = coerce_value(Input(id="ttl", type=InputType.DURATION), ttl)
        key = "/".join([*namespace.split("."), flow_id, "cache", f"{task_id}.zip"])
        return _Cache(key, patterns, ttl, path)

    async def _restore(self, cache: _Cache, log: Callable[[str], None]) -> None:
        try:
            data = b"".join([chunk async for chunk in self._backend.get(cache.key)])
        except FileNotFoundError:
            return
        restored = await self._blocking(_unzip, data, cache.path, cache.ttl, utcnow())
        if restored is None:
            log("WorkingDirectory cache expired (ttl): not restored")
            await self._backend.delete(cache.key)
        else:
            log(f"WorkingDirectory cache: restored {restored} file(s)")

    async def _namespace(self, spec: Any, path: Path, namespace: str) -> None:
        if not isinstance(spec, dict):
            raise UserError("WorkingDirectory namespaceFiles must be a map ({enabled: true})")
        if spec.get("enabled", True) in (False, "false"):
            return
        if self._namespace_files is None:
            raise UserError("namespace files are not configured for this runner")

        def listed(value: Any) -> list[str]:
            return [value] if isinstance(value, str) else [str(v) for v in value or []]

        include, exclude = listed(spec.get("include")), listed(spec.get("exclude"))
        keep = path_matcher(include) if include else None
        drop = path_matcher(exclude) if exclude else None
        per_namespace = spec.get("folderPerNamespace") in (True, "true")
        for ns in listed(spec.get("namespaces")) or [namespace]:
            for stat in await self._namespace_files.list(ns):
                if (keep and not keep(stat.path)) or (drop and drop(stat.path)):
                    continue
                data = await self._namespace_files.get(ns, stat.path)
                if data is None:
                    continue
                target = _inside(path, f"{ns}/{stat.path}" if per_namespace else stat.path)
                await self._blocking(target.parent.mkdir, parents=True, exist_ok=True)
                await self._blocking(target.write_bytes, data)

    async def finish(self, execution_id: str, succeeded: Callable[[str], bool]) -> None:
        """Save the cache of each WorkingDirectory run of the execution that ``succeeded``;
        forget the execution."""
        for task in self._prepared.pop(execution_id, {}).values():
            task.cancel()
        caches = self._caches.pop(execution_id, {})
        for run_id, cache in caches.items():
            if succeeded(run_id) and cache.path.exists():
                data = await self._blocking(_zip, cache.path, cache.patterns, utcnow())
                await self._backend.put(cache.key, _once(data))
