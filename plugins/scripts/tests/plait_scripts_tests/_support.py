"""Test helpers: an in-memory RunContext, process liveness, a wheel built by hand."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import itertools
import os
import tarfile
import time
import zipfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plait_sdk import MetricType, RunContext, Storage, TaskLogger, UserError

P = ParamSpec("P")
T = TypeVar("T")
MASK = "******"
_ids = itertools.count(1)


@dataclass
class Record:
    at: float
    level: str
    message: str


class FakeLog(TaskLogger):
    def __init__(self, secrets: set[str]) -> None:
        self.secrets = secrets
        self.records: list[Record] = []

    def _emit(self, level: str, msg: str, args: tuple[object, ...]) -> None:
        text = msg % args if args else msg
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        self.records.append(Record(time.monotonic(), level, text))

    def debug(self, msg: str, *args: object) -> None:
        self._emit("DEBUG", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("INFO", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("WARNING", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("ERROR", msg, args)

    def messages(self, level: str | None = None) -> list[str]:
        return [r.message for r in self.records if level in (None, r.level)]


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, name: str, data: bytes | AsyncIterable[bytes] | Path) -> str:
        if isinstance(data, Path):
            content = await asyncio.to_thread(data.read_bytes)
        elif isinstance(data, bytes):
            content = data
        else:
            content = b"".join([chunk async for chunk in data])
        uri = f"plait:///test/flow/executions/e1/{name}"
        self.files[uri] = content
        return uri

    async def open(self, uri: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        yield await self.read_bytes(uri)

    async def read_bytes(self, uri: str) -> bytes:
        if uri not in self.files:
            raise UserError(f"{uri} does not exist")
        return self.files[uri]

    async def download(self, uri: str, path: Path) -> Path:
        await asyncio.to_thread(path.write_bytes, await self.read_bytes(uri))
        return path

    async def size(self, uri: str) -> int:
        return len(await self.read_bytes(uri))


class FakeContext(RunContext):
    """A RunContext over memory: records logs (with arrival times), metrics and masks."""

    def __init__(self, working_dir: Path, storage: MemoryStorage | None = None) -> None:
        self.namespace = "test"
        self.flow_id = "flow"
        self.execution_id = "e1"
        self.task_id = "task"
        self.taskrun_id = f"run{next(_ids)}"
        self.attempt = 1
        self.secrets: set[str] = set()
        self._log = FakeLog(self.secrets)
        self._storage = storage or MemoryStorage()
        self._working_dir = working_dir
        self.metrics: list[tuple[str, float, str, dict[str, str]]] = []

    @property
    def log(self) -> FakeLog:
        return self._log

    @property
    def storage(self) -> MemoryStorage:
        return self._storage

    @property
    def working_dir(self) -> Path:
        return self._working_dir

    async def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        return value

    async def secret(self, name: str) -> str:
        raise UserError(f"no secret {name}")

    def mask(self, value: str) -> None:
        self.secrets.add(value)

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: MetricType = "counter",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics.append((name, value, type, dict(tags or {})))

    @property
    def cancelled(self) -> bool:
        return False

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


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
