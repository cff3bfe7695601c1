"""Cached dependency environments: Python virtual environments and Node.js ``node_modules``.

An environment is built once per set of requirements and reused by every later task run that
asks for the same set, whichever flow it belongs to. It lives in the cache directory
(``$PLAIT_SCRIPTS_CACHE``, else ``~/.cache/plait/venvs``) under a name derived from the hash of
the sorted requirements (and of the interpreter it is built for). A file lock serialises the
builders of one environment, across tasks and processes; a marker file written last says the
environment is complete, so a build interrupted halfway is started again from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from plait_sdk import RunContext, TaskFailure

from plait_scripts._process import run_process

CACHE_ENV = "PLAIT_SCRIPTS_CACHE"
READY_MARKER = ".plait-ready"
_LOCK_POLL_SECONDS = 0.1


def cache_root() -> Path:
    """Where environments are kept: ``$PLAIT_SCRIPTS_CACHE`` or ``~/.cache/plait/venvs``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "plait" / "venvs"


def normalise(requirements: Sequence[str]) -> list[str]:
    """The requirement set: whitespace collapsed, blanks and duplicates dropped, sorted."""
    return sorted({" ".join(r.split()) for r in requirements if r.strip()})


def environment_key(kind: str, runtime: str, requirements: Sequence[str]) -> str:
    """A short stable hash of what makes an environment: its kind, runtime and requirements."""
    payload = json.dumps([kind, runtime, normalise(requirements)], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


@contextlib.asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``path``, waited for without blocking the event loop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            await asyncio.sleep(_LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class _Tail:
    """Logs a tool's output at DEBUG and keeps its last lines for an error message."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.lines: deque[str] = deque(maxlen=15)

    def __call__(self, line: str) -> None:
        if line.strip():
            self.ctx.log.debug("%s", line)
            self.lines.append(line)


async def _tool(
    ctx: RunContext, argv: list[str], cwd: Path, env: dict[str, str], what: str
) -> None:
    tail = _Tail(ctx)
    code = await run_process(argv, cwd=cwd, env=env, on_stdout=tail, on_stderr=tail)
    if code != 0:
        detail = "\n".join(tail.lines)
        raise TaskFailure(
            f"{what} failed with exit code {code}" + (f":\n{detail}" if detail else "")
        )


async def _ensure(
    ctx: RunContext,
    directory: Path,
    describe: str,
    build: Callable[[Path], Awaitable[None]],
    requirements: list[str],
) -> Path:
    marker = directory / READY_MARKER
    if await ctx.run_blocking(marker.is_file):
        ctx.log.info("reusing the cached %s %s", describe, directory)
        return directory
    try:
        async with file_lock(directory.with_name(directory.name + ".lock")):
            if await ctx.run_blocking(marker.is_file):  # built while we waited for the lock
                ctx.log.info("reusing the cached %s %s", describe, directory)
                return directory
            ctx.log.info("installing %s into %s", ", ".join(requirements), directory)
            await ctx.run_blocking(shutil.rmtree, directory, True)  # a build interrupted halfway
            await build(directory)
            stamp = {"requirements": requirements, "created": datetime.now(UTC).isoformat()}
            await ctx.run_blocking(marker.write_text, json.dumps(stamp, indent=2) + "\n")
    except OSError as error:
        raise TaskFailure(
            f"cannot prepare the {describe} in {directory} (set ${CACHE_ENV} to a writable "
            f"directory): {error}"
        ) from None
    return directory


async def python_environment(
    ctx: RunContext, python: str, requirements: Sequence[str], env: dict[str, str]
) -> Path:
    """A virtual environment with ``requirements`` installed, built with ``python`` if needed.

    pip runs with the task's environment, so ``PIP_INDEX_URL``, ``PIP_FIND_LINKS``,
    ``PIP_NO_INDEX``... given in ``env`` apply.
    """
    wanted = normalise(requirements)
    identity = await _python_identity(ctx, python, env, ctx.working_dir)
    root = cache_root()
    directory = root / f"python-{environment_key('python', identity[1], wanted)}"

    async def build(target: Path) -> None:
        await ctx.run_blocking(target.parent.mkdir, parents=True, exist_ok=True)
        await _tool(ctx, [identity[0], "-m", "venv", str(target)], root, env, "creating the venv")
        requirements_file = target / "plait-requirements.txt"
        await ctx.run_blocking(requirements_file.write_text, "\n".join(wanted) + "\n")
        pip_env = {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        pip = [str(target / "bin" / "python"), "-m", "pip", "install"]
        await _tool(ctx, [*pip, "-r", str(requirements_file)], root, pip_env, "pip install")

    return await _ensure(ctx, directory, "Python environment", build, wanted)


async def _python_identity(
    ctx: RunContext, python: str, env: dict[str, str], cwd: Path
) -> tuple[str, str]:
    """The real executable behind ``python`` (a shim, a venv's python...) and its version."""
    out: list[str] = []
    err = _Tail(ctx)
    probe = "import json, sys; print(json.dumps([sys.executable, sys.version]))"
    code = await run_process(
        [python, "-c", probe], cwd=cwd, env=env, on_stdout=out.append, on_stderr=err
    )
    if code != 0 or not out:
        raise TaskFailure(f"cannot run {python!r}: " + "\n".join(err.lines))
    executable, version = json.loads(out[-1])
    return str(executable), f"{executable} {version}"


async def node_environment(
    ctx: RunContext, node: str, npm: str, packages: Sequence[str], env: dict[str, str]
) -> Path:
    """A directory whose ``node_modules`` holds ``packages``, installed with npm if needed."""
    wanted = normalise(packages)
    version: list[str] = []
    err = _Tail(ctx)
    code = await run_process(
        [node, "--version"], cwd=ctx.working_dir, env=env, on_stdout=version.append, on_stderr=err
    )
    if code != 0:
        raise TaskFailure(f"cannot run {node!r}: " + "\n".join(err.lines))
    directory = cache_root() / f"node-{environment_key('node', ''.join(version), wanted)}"

    async def build(target: Path) -> None:
        await ctx.run_blocking(target.mkdir, parents=True, exist_ok=True)
        manifest = json.dumps({"name": "plait-node-env", "private": True}) + "\n"
        await ctx.run_blocking((target / "package.json").write_text, manifest)
        npm_env = {**env, "NPM_CONFIG_UPDATE_NOTIFIER": "false", "NPM_CONFIG_FUND": "false"}
        argv = [npm, "install", "--no-audit", "--no-fund", *wanted]
        await _tool(ctx, argv, target, npm_env, "npm install")

    return await _ensure(ctx, directory, "Node.js environment", build, wanted)
