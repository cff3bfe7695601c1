"""What the script tasks share: properties, outputs, the output protocol and the run itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait_sdk import Output, RunContext, Task, TaskFailure
from pydantic import Field, field_validator

from plait_scripts._files import (
    INTERNAL_PREFIX,
    all_files,
    match_output_files,
    upload,
    write_input_files,
)
from plait_scripts._process import run_process

#: Kestra's `::{"outputs": {...}}::` lines (also `metrics` and `logs`), on stdout or stderr.
PROTOCOL = re.compile(r"^::(\{.*\})::$")
#: Environment variables of the Plait process that never reach a script.
HIDDEN_ENV_PREFIXES = ("PLAIT_SECRET_", "PLAIT_MASTER_KEY", "PLAIT_SECRETS_DIR")
#: Names of `env` entries whose values are treated as secrets (masked in logs and outputs).
SENSITIVE_ENV = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH(?!OR)",
    re.IGNORECASE,
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
_PROCESS_RUNNERS = frozenset(
    {"io.kestra.plugin.core.runner.Process", "io.kestra.plugin.scripts.runner.Process"}
)
_STDERR_TAIL = 10


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
    scratch: Path
    env: dict[str, str]
    #: Files to delete when the run ends (the script file written into the working directory).
    cleanup: list[Path] = field(default_factory=list)


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
    interpreter: list[str] = Field(default=["/bin/sh", "-c"], min_length=1)
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
    task_runner: dict[str, Any] | None = None
    """Accepted for Kestra compatibility: only the process runner
    (`io.kestra.plugin.core.runner.Process`) is supported; any other is ignored with a
    warning."""

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

    @field_validator("output_files", "before_commands", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        """Install what is needed, adjust `run.env`, and return the main commands."""
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> ScriptOutput:
        self._warn_ignored(ctx)
        workdir = ctx.working_dir
        scratch = Path(await ctx.run_blocking(tempfile.mkdtemp, prefix="plait-script-"))
        run = RunState(workdir=workdir, scratch=scratch, env={})
        try:
            output_dir = scratch / "output"
            await ctx.run_blocking(output_dir.mkdir)
            run.env = self._environment(ctx, workdir, output_dir)
            await write_input_files(ctx, workdir, self.input_files)
            main = await self.prepare(ctx, run)
            collector = OutputCollector(ctx, warning_on_std_err=self.warning_on_std_err)
            code = await run_process(
                [*self.interpreter, self._wrapper(main)],
                cwd=workdir,
                env=run.env,
                on_stdout=collector.stdout,
                on_stderr=collector.stderr,
            )
            if code != 0:
                raise TaskFailure(collector.failure(code))
            files, unmatched = await ctx.run_blocking(
                match_output_files, workdir, self.output_files
            )
            for pattern in unmatched:
                ctx.log.warning("outputFiles: no file matches %r", pattern)
            files.update(await ctx.run_blocking(all_files, output_dir))
            return ScriptOutput(
                exit_code=code,
                vars=collector.vars,
                output_files=await upload(ctx, files),
                std_out_line_count=collector.stdout_lines,
                std_err_line_count=collector.stderr_lines,
            )
        finally:
            for path in run.cleanup:
                await ctx.run_blocking(path.unlink, missing_ok=True)
            await ctx.run_blocking(shutil.rmtree, scratch, True)

    def _warn_ignored(self, ctx: RunContext) -> None:
        if self.container_image:
            ctx.log.warning(
                "containerImage %r is ignored: Plait runs scripts as local processes",
                self.container_image,
            )
        runner = (self.task_runner or {}).get("type")
        if runner is not None and runner not in _PROCESS_RUNNERS:
            ctx.log.warning("taskRunner %r is not supported: running as a local process", runner)

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

    def script_file(self, ctx: RunContext, run: RunState, suffix: str) -> Path:
        """Where to write an inline script: a hidden file of the working directory, so that
        relative imports of input files work; deleted when the run ends."""
        path = run.workdir / f"{INTERNAL_PREFIX}{ctx.taskrun_id}{suffix}"
        run.cleanup.append(path)
        return path


class OutputCollector:
    """Receives the output lines: logs them, and applies Kestra's `::{...}::` protocol."""

    def __init__(self, ctx: RunContext, *, warning_on_std_err: bool) -> None:
        self.ctx = ctx
        self.vars: dict[str, Any] = {}
        self.stdout_lines = 0
        self.stderr_lines = 0
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        self._stderr_log = ctx.log.warning if warning_on_std_err else ctx.log.info

    def stdout(self, line: str) -> None:
        self.stdout_lines += 1
        self._line(line, self.ctx.log.info)

    def stderr(self, line: str) -> None:
        self.stderr_lines += 1
        if line.strip():
            self.stderr_tail.append(line)
        self._line(line, self._stderr_log)

    def _line(self, line: str, log: Callable[..., None]) -> None:
        match = PROTOCOL.match(line.strip())
        if match is not None:
            try:
                payload = json.loads(match.group(1))
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                self._apply(payload)
                return
        if line.strip():
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
