"""Test helpers: a harness context over a given working directory, process liveness, a wheel
and an npm tarball built by hand."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

from plait_sdk.testing import HarnessContext, TaskHarness


def context(working_dir: Path, **options: Any) -> HarnessContext:
    """A task run's context (plait_sdk.testing) whose working directory is ``working_dir``."""
    root = working_dir.parent / f".harness-{working_dir.name}"
    return TaskHarness(root=root).context(working_dir=working_dir, **options)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


async def wait_dead(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return not alive(pid)


def build_wheel(directory: Path, name: str = "plait_tiny_dep", version: str = "1.0") -> Path:
    """A pure-Python wheel of one module (`VALUE = 42`), zipped by hand: no build backend."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 42\n",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: plait-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def build_npm_tarball(directory: Path, name: str = "plait-tiny-node") -> Path:
    """An npm package tarball (`module.exports = 42`), made with tarfile: no registry."""
    files = {
        "package/package.json": (
            f'{{"name": "{name}", "version": "1.0.0", "main": "index.js"}}\n'
        ).encode(),
        "package/index.js": b"module.exports = 42;\n",
    }
    tarball = directory / f"{name}-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return tarball
