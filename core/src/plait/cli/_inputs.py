"""Inputs given on ``plait run``'s command line, once the flow says their types: a FILE input
is a file (uploaded to the execution's internal storage, as the server does with a multipart
upload), ``KEY=@path`` of any other input is the file's text."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from plait_sdk import UserError

from plait.files import SCHEME, check_key, execution_prefix
from plait.flows import Flow, InputType

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=,~-]")
_CHUNK = 1 << 20


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def local_inputs(
    runner: Any, flow: Flow, execution_id: str, given: Mapping[str, Any], pairs: set[str]
) -> dict[str, Any]:
    """``given`` with the command line's ``--input`` values (``pairs``) resolved: FILE inputs
    (``KEY=@path`` or ``KEY=path``) uploaded under the execution's prefix as ``plait:///``
    URIs; ``KEY=@path`` of other inputs read as UTF-8 text."""
    kinds = {spec.id: spec.type for spec in flow.inputs}
    out = dict(given)
    prefix = execution_prefix(flow.namespace, flow.id, execution_id)
    for key in pairs:
        value = out.get(key)
        if not isinstance(value, str):
            continue
        if kinds.get(key) is InputType.FILE and not value.startswith(SCHEME):
            path = Path(value[1:] if value.startswith("@") else value)
            if not await asyncio.to_thread(path.is_file):
                raise UserError(f"--input {key}: no such file {str(path)!r} (a FILE input)")
            name = _UNSAFE.sub("_", path.name).lstrip(".") or "file"
            storage_key = f"{prefix}/inputs/{check_key(key)}/{name}"
            await runner.storage.put(storage_key, _chunks(path))
            out[key] = f"{SCHEME}/{storage_key}"
        elif value.startswith("@"):
            try:
                out[key] = await asyncio.to_thread(Path(value[1:]).read_text, "utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise UserError(f"--input {key}: cannot read {value[1:]}: {error}") from None
    return out
