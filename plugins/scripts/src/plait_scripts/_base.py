"""What the script tasks share: properties, outputs, the output protocol and the run itself."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from plait_sdk import Model, Output, RunContext, Task, TaskFailure
from pydantic import BeforeValidator, Field, field_validator

from plait_scripts._files import (
    INTERNAL_PREFIX,
    all_files,
    localise_uris,
    match_output_files,
    upload,
    write_input_files,
    write_namespace_files,
)
from plait_scripts.runners import DockerFallbackRunner, Stream, runner_for


#: Kestra's `::{"outputs": {...}}::` lines (also `metrics` and `logs`), on stdout or stderr.
def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


#: The ``commands`` property of the Commands tasks: a list, or one command as a string.
Commands = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]

PROTOCOL = re.compile(r"^::(\{.*\})::$")
#: Environment variables of the Plait process that never reach a script.
HIDDEN_ENV_PREFIXES = ("PLAIT_SECRET_", "PLAIT_MASTER_KEY", "PLAIT_SECRETS_DIR")
#: Names of `env` entries whose values are treated as secrets (masked in logs and outputs).
SENSITIVE_ENV = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH(?!OR)",
    re.IGNORECASE,
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
DEFAULT_INTERPRETER = ("/bin/sh", "-c")
_STDERR_TAIL = 10
#: How often a run checks ``ctx.cancelled`` (a context may flag a kill without cancelling).
_CANCEL_POLL_SECONDS = 0.2
#: Up to this many characters of inline scripts are written without a worker-thread hop.
_INLINE_WRITE_LIMIT = 1 << 18


class ScriptOutput(Output):
    """Outputs of every script task."""

    exit_code: int
    """The exit code of the process (0: the task succeeded)."""
    vars: dict[str, Any] = Field(default_factory=dict)
    """Values the script printed as `::{"outputs": {...}}::` lines, merged in order."""
    output_files: dict[str, str] = Field(default_factory=dict)
    """Internal-storage URI of each uploaded file, by its path relative to the working directory
    (or to `$OUTPUT_DIR`)."""
    std_out_line_count: int = 0
    """How many lines the process wrote on standard output."""
    std_err_line_count: int = 0
    """How many lines the process wrote on standard error."""


@dataclass
class RunState:
    """The state of one run, handed to the language-specific preparation."""

    workdir: Path
    #: A private directory of the run (not created yet when ``prepare`` is called): it holds
    #: ``$OUTPUT_DIR`` and is deleted when the run ends.
    scratch: Path
    env: dict[str, str]
    #: Files to write before the process starts (with the scratch directory, in one go).
    files: dict[Path, str] = field(default_factory=dict)
    #: Symbolic links to make then: link -> target.
    links: dict[Path, Path] = field(default_factory=dict)
    #: Files to delete when the run ends (the script file written into the working directory).
    cleanup: list[Path] = field(default_factory=list)
    #: The program and arguments to start instead of the interpreter, when no shell is needed
    #: (an inline Python or Node.js script without ``beforeCommands``): one process less.
    direct: list[str] | None = None


class NamespaceFilesSpec(Model):
    """Kestra's `namespaceFiles` block of the script tasks (and of WorkingDirectory)."""

    enabled: bool = True
    """Copy the files (a block given with `enabled: false` copies none)."""
    include: list[str] = Field(default_factory=list)
    """Only the files matching one of these globs or `regex:` patterns (all when empty)."""
    exclude: list[str] = Field(default_factory=list)
    """Leave out the files matching one of these."""
    namespaces: list[str] = Field(default_factory=list)
    """The namespaces to copy from (the flow's when empty)."""
    folder_per_namespace: bool = False
    """Put each namespace's files in a folder named after the namespace."""
    if_exists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"
    """When the working directory has the file already: replace it (OVERWRITE, WARN), fail
    the task (FAIL) or keep it (IGNORE)."""

    @field_validator("include", "exclude", "namespaces", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ScriptTask(Task):
    """Common base of the script tasks (not registered itself)."""

    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables added to (or replacing) the ones the process inherits. Values whose
    name looks secret (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*API_KEY*`...) are masked,
    as is any value rendered from `secret()`."""
    input_files: dict[str, str] = Field(default_factory=dict)
    """Files to create in the working directory before the run, by relative path: inline content,
    or a `plait:///` URI of internal storage (an output of another task) to download. A path
    leaving the working directory is refused."""
    output_files: list[str] = Field(default_factory=list)
    """Glob patterns (`report.csv`, `out/*.json`, `**/*.png`) of files, relative to the
    working directory, to upload to internal storage after a successful run; their URIs are in
    the `outputFiles` output. Files written to `$OUTPUT_DIR` are uploaded too."""
    before_commands: list[str] = Field(default_factory=list)
    """Shell commands run first, in the same shell (to install a tool, activate a venv...)."""
    interpreter: list[str] = Field(default=list(DEFAULT_INTERPRETER), min_length=1)
    """The program and arguments that run the commands; the commands are passed as the last
    argument."""
    fail_fast: bool = True
    """Stop at the first command that fails (`set -e`, for shell interpreters); otherwise the
    exit code of the last command decides."""
    warning_on_std_err: bool = True
    """Log standard error at WARNING (at INFO when false). Plait's runnable tasks cannot end in
    the WARNING state, so unlike Kestra this only sets the level of those log lines; the
    `stdErrLineCount` output says whether anything was written there."""
    container_image: str | None = None
    """Accepted for Kestra compatibility and ignored (with a warning): scripts run as local
    processes."""
    namespace_files: NamespaceFilesSpec | None = None
    """Copy namespace files into the working directory before the run (Kestra's
    `namespaceFiles`): `{enabled: true}` copies all of the flow's namespace; `include` and
    `exclude` take globs (`scripts/**`, `**.sql`) or `regex:` patterns."""
    task_runner: dict[str, Any] | None = None
    """Where the command runs: `{type: process}` (the default) runs it as a local subprocess
    of the worker (Kestra's `io.kestra.plugin.core.runner.Process` is the same). Other runner
    types (containers...) come from plugins; an unknown type is refused when the flow is
    validated."""

    @field_validator("env", mode="before")
    @classmethod
    def _env_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value

    @field_validator("input_files", mode="before")
    @classmethod
    def _files_map(cls, value: Any) -> Any:
        # A template such as "{{ outputs.a.outputFiles | json }}" renders to a JSON string.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("inputFiles must be a map of path to content or URI") from None
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value

    @field_validator("task_runner")
    @classmethod
    def _known_runner(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        runner_for(value)  # refuses an unknown type or invalid runner properties
        return value

    @field_validator("output_files", "before_commands", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        """Install what is needed, adjust `run.env`, and return the main commands."""
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> ScriptOutput:
        runner = runner_for(self.task_runner)
        if isinstance(runner, DockerFallbackRunner):
            ctx.log.warning(
                "no container runtime here: the %s task runner runs the command as a local "
                "process instead of in image %r",
                runner.type,
                runner.image or self.container_image or "(none given)",
            )
        elif self.container_image:
            ctx.log.warning(
                "containerImage %r is ignored by the %s task runner",
                self.container_image,
                runner.type,
            )
        workdir = ctx.working_dir
        scratch = Path(tempfile.gettempdir()) / f"plait-script-{secrets.token_hex(8)}"
        output_dir = scratch / "output"
        run = RunState(workdir=workdir, scratch=scratch, env={})
        created = False
        try:
            run.env = self._environment(ctx, workdir, output_dir)
            if self.namespace_files is not None:
                await write_namespace_files(ctx, workdir, self.namespace_files)
            if self.input_files:
                await write_input_files(ctx, workdir, self.input_files)
            task = await self._localised(ctx, workdir)
            main = await task.prepare(ctx, run)
            created = True
            if sum(map(len, run.files.values())) <= _INLINE_WRITE_LIMIT:
                # Two mkdir and a small write in temporary directories: a worker-thread hop
                # would cost more than they do.
                _set_up(run)
            else:
                await ctx.run_blocking(_set_up, run)
            if run.direct is not None and not task._needs_shell():
                command = run.direct
            else:
                command = [*task.interpreter, task._wrapper(main)]
            collector = OutputCollector(ctx, warning_on_std_err=self.warning_on_std_err)
            cancel = asyncio.Event()
            watcher = asyncio.create_task(_watch_cancelled(ctx, cancel))
            try:
                code = await runner.run(
                    command, env=run.env, cwd=workdir, on_line=collector.line, cancel=cancel
                )
            finally:
                watcher.cancel()
            if cancel.is_set():
                raise TaskFailure("the task was cancelled: " + collector.failure(code))
            if code != 0:
                raise TaskFailure(collector.failure(code))
            if self.output_files:  # a walk of the working directory: in a worker thread
                files, unmatched = await ctx.run_blocking(_collect, run, self.output_files)
            else:  # one look into $OUTPUT_DIR
                files, unmatched = _collect(run, [])
            for pattern in unmatched:
                ctx.log.warning("outputFiles: no file matches %r", pattern)
            return ScriptOutput(
                exit_code=code,
                vars=collector.vars,
                output_files=await upload(ctx, files) if files else {},
                std_out_line_count=collector.stdout_lines,
                std_err_line_count=collector.stderr_lines,
            )
        finally:
            if created:
                _clean_up(run)

    async def _localised(self, ctx: RunContext, workdir: Path) -> ScriptTask:
        """This task with each ``plait:///`` URI in its commands or script replaced by the path
        of a local copy in the working directory (as Kestra does with ``kestra://`` URIs), so
        that ``{{ inputs.file }}`` or ``{{ outputs.x.uri }}`` names a file the process can
        open."""
        seen: dict[str, str] = {}
        changes: dict[str, Any] = {}
        new: str | list[str]
        for name in ("script", "commands", "before_commands"):
            value = getattr(self, name, None)
            if isinstance(value, str):
                new = await localise_uris(ctx, workdir, value, seen)
            elif isinstance(value, list):
                new = [await localise_uris(ctx, workdir, v, seen) for v in value]
            else:
                continue
            if new != value:
                changes[name] = new
        return self.model_copy(update=changes) if changes else self

    def _needs_shell(self) -> bool:
        return bool(self.before_commands) or tuple(self.interpreter) != DEFAULT_INTERPRETER

    def _environment(self, ctx: RunContext, workdir: Path, output_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_ENV_PREFIXES)}
        # Line-by-line logs need the script's output unbuffered (Python buffers a pipe).
        env["PYTHONUNBUFFERED"] = "1"
        env["WORKING_DIR"] = str(workdir)
        env["OUTPUT_DIR"] = str(output_dir)
        for name, value in self.env.items():
            if SENSITIVE_ENV.search(name):
                ctx.mask(value)
            env[name] = value
        env.setdefault("PATH", os.defpath)
        return env

    def _wrapper(self, main: list[str]) -> str:
        lines: list[str] = []
        if self.fail_fast and Path(self.interpreter[0]).name in _SHELLS:
            lines.append("set -e")
        lines += self.before_commands
        lines += main
        return "\n".join(lines) + "\n"

    def script_file(self, ctx: RunContext, run: RunState, suffix: str, content: str) -> Path:
        """An inline script, written before the run as a hidden file of the working directory
        (so that relative imports of input files work) and deleted when the run ends."""
        path = run.workdir / f"{INTERNAL_PREFIX}{ctx.taskrun_id}{suffix}"
        run.files[path] = content
        run.cleanup.append(path)
        return path


def _set_up(run: RunState) -> None:
    """Create the scratch directory (private to the user) and ``$OUTPUT_DIR``, and write the
    run's files (blocking)."""
    run.scratch.mkdir(mode=0o700)
    (run.scratch / "output").mkdir()
    for path, content in run.files.items():
        path.write_text(content, "utf-8")
    for link, target in run.links.items():
        link.symlink_to(target)


def _collect(run: RunState, patterns: list[str]) -> tuple[dict[str, Path], list[str]]:
    """The files to upload (matching ``patterns``, and all of ``$OUTPUT_DIR``) and the patterns
    matching none (blocking)."""
    files, unmatched = match_output_files(run.workdir, patterns) if patterns else ({}, [])
    output_dir = run.scratch / "output"
    with os.scandir(output_dir) as entries:
        empty = next(entries, None) is None
    if not empty:
        files.update(all_files(output_dir))
    return files, unmatched


def _clean_up(run: RunState) -> None:
    """Delete the script files now, and the scratch directory in the background."""
    for path in run.cleanup:
        with contextlib.suppress(OSError):
            path.unlink()
    remove_later(run.scratch)


_trash: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
_trash_lock = threading.Lock()
_trash_thread: threading.Thread | None = None


def remove_later(path: Path) -> None:
    """Delete the directory ``path`` in a background thread: removing a directory can take a
    millisecond or more (file systems mounted with ``discard``...), which the task need not
    wait for. At exit, what is queued is removed before the process ends."""
    global _trash_thread
    with _trash_lock:
        if _trash_thread is None:
            _trash_thread = threading.Thread(
                target=_empty_trash, name="plait-scripts-rm", daemon=True
            )
            _trash_thread.start()
            atexit.register(_drain_trash, _trash_thread)
    _trash.put(path)


def _empty_trash() -> None:
    while (path := _trash.get()) is not None:
        shutil.rmtree(path, ignore_errors=True)


def _drain_trash(thread: threading.Thread) -> None:
    _trash.put(None)  # after everything queued so far
    thread.join(timeout=30)


async def _watch_cancelled(ctx: RunContext, cancel: asyncio.Event) -> None:
    """Set ``cancel`` once the context says the run was killed (or timed out): a context may
    only flag it, without cancelling the task's coroutine."""
    while True:
        if ctx.cancelled:
            cancel.set()
            return
        await asyncio.sleep(_CANCEL_POLL_SECONDS)


class OutputCollector:
    """Receives the output lines: logs them, and applies Kestra's `::{...}::` protocol."""

    def __init__(self, ctx: RunContext, *, warning_on_std_err: bool) -> None:
        self.ctx = ctx
        self.vars: dict[str, Any] = {}
        self.stdout_lines = 0
        self.stderr_lines = 0
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        self._stderr_log = ctx.log.warning if warning_on_std_err else ctx.log.info

    def line(self, stream: Stream, line: str) -> None:
        """One line of output, as a task runner hands it over."""
        if stream == "stdout":
            self.stdout(line)
        else:
            self.stderr(line)

    def stdout(self, line: str) -> None:
        self.stdout_lines += 1
        self._line(line, self.ctx.log.info)

    def stderr(self, line: str) -> None:
        self.stderr_lines += 1
        if line and not line.isspace():
            self.stderr_tail.append(line)
        self._line(line, self._stderr_log)

    def _line(self, line: str, log: Callable[..., None]) -> None:
        if not line or line.isspace():
            return
        if "::{" in line:
            match = PROTOCOL.match(line.strip())
            if match is not None:
                try:
                    payload = json.loads(match.group(1))
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    self._apply(payload)
                    return
        log("%s", line)

    def _apply(self, payload: dict[str, Any]) -> None:
        outputs = payload.get("outputs")
        if isinstance(outputs, dict):
            self.vars.update(outputs)
        for metric in _dicts(payload.get("metrics")):
            self._metric(metric)
        for entry in _dicts(payload.get("logs")):
            level = str(entry.get("level", "INFO")).upper()
            log = {
                "TRACE": self.ctx.log.debug,
                "DEBUG": self.ctx.log.debug,
                "WARN": self.ctx.log.warning,
                "WARNING": self.ctx.log.warning,
                "ERROR": self.ctx.log.error,
            }.get(level, self.ctx.log.info)
            log("%s", str(entry.get("message", "")))

    def _metric(self, metric: dict[str, Any]) -> None:
        name, kind, value = metric.get("name"), metric.get("type", "counter"), metric.get("value")
        tags = metric.get("tags") or {}
        if (
            not isinstance(name, str)
            or kind not in ("counter", "timer", "gauge")
            or not isinstance(value, int | float)
            or isinstance(value, bool)
            or not isinstance(tags, dict)
        ):
            self.ctx.log.warning("ignored an invalid metric from the script: %s", metric)
            return
        text_tags = {str(k): _text(v) for k, v in tags.items()}
        self.ctx.metric(name, float(value), type=kind, tags=text_tags)

    def failure(self, code: int) -> str:
        """The task failure message for exit code `code`, with the end of stderr."""
        if code < 0:
            try:
                head = f"the process was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                head = f"the process was killed by signal {-code}"
        else:
            head = f"the process exited with code {code}"
        if not self.stderr_tail:
            return head
        tail = "\n".join(self.stderr_tail)
        return f"{head}: {self.stderr_tail[-1].strip()}\nlast lines of stderr:\n{tail}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _text(value: Any) -> Any:
    """Scalars as the text a script sees (`true`, `3`); anything else left to validation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return value
