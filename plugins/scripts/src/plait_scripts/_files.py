"""Input files written into the working directory, and output files uploaded from it."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from plait_sdk import RunContext, UserError, path_matcher

STORAGE_SCHEME = "plait:///"
#: Prefix of the files this plugin writes in the working directory for its own use.
INTERNAL_PREFIX = ".plait-script-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=,~-]")


def is_storage_uri(value: str) -> bool:
    """Whether an input file's value names a file of internal storage rather than content."""
    text = value.strip()
    return text.startswith(STORAGE_SCHEME) and not any(c.isspace() for c in text)


def inside(root: Path, name: str, *, what: str) -> Path:
    """``root / name``, refused unless it stays inside ``root`` (symbolic links followed)."""
    if not name or "\x00" in name:
        raise UserError(f"{what}: invalid path {name!r}")
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"{what}: {name!r} must be a path relative to the working directory")
    base = root.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise UserError(f"{what}: {name!r} is outside the working directory")
    return target


async def write_input_files(ctx: RunContext, root: Path, files: dict[str, str]) -> None:
    """Write each file: inline content as UTF-8, or a ``plait:///`` URI fetched from storage."""
    for name, value in files.items():
        target = inside(root, name, what="inputFiles")
        await ctx.run_blocking(target.parent.mkdir, parents=True, exist_ok=True)
        if is_storage_uri(value):
            await ctx.storage.download(value.strip(), target)
        else:
            await ctx.run_blocking(target.write_bytes, value.encode("utf-8"))


def match_output_files(root: Path, patterns: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Files under ``root`` matching the glob patterns, by relative path; and unmatched patterns.

    Blocking (walks the directory): call it through ``ctx.run_blocking``.
    """
    base = root.resolve()
    found: dict[str, Path] = {}
    unmatched: list[str] = []
    for pattern in patterns:
        clean = pattern.strip().replace("\\", "/").removeprefix("./")
        if not clean or PurePosixPath(clean).is_absolute() or ".." in clean.split("/"):
            raise UserError(
                f"outputFiles: {pattern!r} must be a glob relative to the working directory"
            )
        hits = 0
        for path in sorted(base.glob(clean)):
            resolved = path.resolve()
            if not path.is_file() or not resolved.is_relative_to(base):
                continue
            relative = path.relative_to(base).as_posix()
            if PurePosixPath(relative).name.startswith(INTERNAL_PREFIX):
                continue
            found[relative] = path
            hits += 1
        if not hits:
            unmatched.append(pattern)
    return found, unmatched


def all_files(root: Path) -> dict[str, Path]:
    """Every file under ``root``, by relative path (blocking)."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def storage_name(relative: str) -> str:
    """A storage name for a relative path: characters storage refuses become ``_``."""
    parts = [_UNSAFE.sub("_", part) for part in relative.split("/") if part]
    return "/".join(p if p not in (".", "..") else p.replace(".", "_") for p in parts)


async def upload(ctx: RunContext, files: dict[str, Path]) -> dict[str, str]:
    """Put each file into internal storage; returns relative path -> ``plait:///`` URI."""
    uris: dict[str, str] = {}
    for relative, path in files.items():
        uris[relative] = await ctx.storage.put(storage_name(relative), path)
    return uris


#: A ``plait:///`` URI inside a command or script (Kestra replaces its ``kestra://`` URIs so).
_URI_IN_TEXT = re.compile(r"plait:///[A-Za-z0-9._@+=,~/%-]+")


async def localise_uris(ctx: RunContext, root: Path, text: str, seen: dict[str, str]) -> str:
    """``text`` with each internal-storage URI replaced by the path of a local copy in the
    working directory (downloaded once per URI; ``seen`` maps URI -> local path)."""
    if STORAGE_SCHEME not in text:
        return text
    for uri in dict.fromkeys(_URI_IN_TEXT.findall(text)):
        if uri not in seen:
            name = PurePosixPath(uri).name or "file"
            target = root / name
            n = 1
            while target.exists():  # two URIs with one name: keep both
                target = root / f"{n}-{name}"
                n += 1
            await ctx.storage.download(uri, target)
            seen[uri] = str(target)
        text = text.replace(uri, seen[uri])
    return text


async def write_namespace_files(ctx: RunContext, root: Path, spec: Any) -> int:
    """Copy the namespace files ``spec`` (Kestra's ``namespaceFiles``) selects into ``root``;
    returns how many were written."""
    if spec is None or not spec.enabled:
        return 0
    namespaces = spec.namespaces or [ctx.namespace]
    count = 0
    for ns in namespaces:
        for path in await ctx.namespace_files.list(namespace=ns):
            if spec.include and not path_matcher(spec.include)(path):
                continue
            if spec.exclude and path_matcher(spec.exclude)(path):
                continue
            relative = f"{ns}/{path}" if spec.folder_per_namespace else path
            target = inside(root, relative, what="namespaceFiles")
            if target.exists():
                if spec.if_exists == "FAIL":
                    raise UserError(f"namespaceFiles: {relative} exists in the working directory")
                if spec.if_exists == "IGNORE":
                    continue
                if spec.if_exists == "WARN":
                    ctx.log.warning("namespaceFiles: replaced %s", relative)
            data = await ctx.namespace_files.read(path, namespace=ns)
            await ctx.run_blocking(target.parent.mkdir, parents=True, exist_ok=True)
            await ctx.run_blocking(target.write_bytes, data)
            count += 1
    return count
