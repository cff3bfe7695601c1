"""Task runners: `taskRunner` selects one, the process runner is the default, others plug in."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from plait_scripts import (
    ProcessRunner,
    PythonScript,
    ShellCommands,
    ShellScript,
    TaskRunner,
    register_runner,
    runners,
)
from plait_scripts.runners import DEFAULT_RUNNER, OnLine, Stream, runner_for
from plait_sdk import TaskFailure, UserError
from plait_sdk.testing import HarnessContext
from pydantic import ValidationError

from ._support import context, wait_dead
from .conftest import Harness


class NiceRunner(TaskRunner):
    """A runner of another plugin: runs the command at a lower priority, through the process
    runner."""

    type_name: ClassVar[str] = "test.runner.Nice"
    aliases: ClassVar[tuple[str, ...]] = ("test.Nice",)

    type: str = "test.runner.Nice"
    niceness: int = 5
    """Added to the priority of the command."""

    async def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        on_line: OnLine,
        cancel: asyncio.Event,
    ) -> int:
        on_line("stderr", f"lowering the priority by {self.niceness}")
        return await DEFAULT_RUNNER.run(
            ["nice", "-n", str(self.niceness), *command],
            env=env,
            cwd=cwd,
            on_line=on_line,
            cancel=cancel,
        )


@pytest.fixture
def nice_runner() -> Iterator[type[NiceRunner]]:
    register_runner(NiceRunner)
    try:
        yield NiceRunner
    finally:
        from plait_sdk import _runners as sdk_runners

        for name in (NiceRunner.type_name, *NiceRunner.aliases):
            del sdk_runners._RUNNERS[name]


@pytest.mark.parametrize(
    "spec",
    [
        None,
        {"type": "process"},
        {"type": "io.kestra.plugin.core.runner.Process"},
        {"type": "io.kestra.plugin.scripts.runner.Process"},
        {"type": "plait.scripts.runner.Process"},
    ],
)
async def test_the_process_runner_is_the_default_and_has_kestras_names(
    ctx: HarnessContext, spec: dict[str, Any] | None
) -> None:
    assert isinstance(runner_for(spec), ProcessRunner)
    task = ShellCommands.model_validate({"commands": ["echo $$"], "taskRunner": spec})
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert int(ctx.messages("INFO")[0]) != os.getpid()
    assert ctx.messages("WARNING") == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "io.kestra.plugin.scripts.runner.kubernetes.Kubernetes"},
            "unknown taskRunner type 'io.kestra.plugin.scripts.runner.kubernetes.Kubernetes': "
            "available: io.kestra.plugin.scripts.runner.docker.Docker, process",
        ),
        ({"type": "kubernetes"}, "unknown taskRunner type 'kubernetes'"),
        (
            {"image": "python"},
            "taskRunner needs a type; available: "
            "io.kestra.plugin.scripts.runner.docker.Docker, process",
        ),
        ({"type": "process", "image": "python"}, "taskRunner 'process': unknown property 'image'"),
    ],
)
def test_unknown_runners_and_properties_are_refused_at_validation(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ShellCommands.model_validate({"commands": ["true"], "taskRunner": spec})
    assert message in str(refused.value)
    assert "\n  " not in str(refused.value).split("Value error, ", 1)[1].split("[type=")[0]


async def test_an_unknown_runner_fails_the_flow_validation_at_the_task(harness: Harness) -> None:
    with pytest.raises(UserError) as refused:
        await harness.runner.deploy(
            "id: docker\nnamespace: test.scripts\ntasks:\n"
            "  - id: build\n    type: plait.scripts.shell.Commands\n"
            "    commands: [make]\n"
            "    taskRunner:\n      type: io.kestra.plugin.scripts.runner.kubernetes.Kubernetes\n",
            file="flow.yaml",
        )
    text = str(refused.value)
    assert text.startswith("flow.yaml:")
    assert "unknown taskRunner type 'io.kestra.plugin.scripts.runner.kubernetes.Kubernetes'" in text


@pytest.mark.parametrize(
    ("spec", "image"),
    [
        (
            {
                "type": "io.kestra.plugin.scripts.runner.docker.Docker",
                "image": "python:3.12-slim",
                "pullPolicy": "IF_NOT_PRESENT",
            },
            "python:3.12-slim",
        ),
        ({"type": "io.kestra.plugin.scripts.runner.docker.Docker"}, "ubuntu:24.04"),
    ],
)
async def test_kestras_docker_runner_runs_as_a_process_and_warns_naming_the_image(
    ctx: HarnessContext, spec: dict[str, Any], image: str
) -> None:
    task = ShellCommands.model_validate(
        {"commands": ["echo $$"], "taskRunner": spec, "containerImage": "ubuntu:24.04"}
    )
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert int(ctx.messages("INFO")[0]) != os.getpid()
    [warning] = ctx.messages("WARNING")
    assert "no container runtime here" in warning
    assert repr(image) in warning


async def test_a_runner_from_another_plugin_is_selected_by_its_type(
    ctx: HarnessContext, nice_runner: type[NiceRunner]
) -> None:
    assert "test.runner.Nice" in runners.runner_types()
    task = PythonScript.model_validate(
        {
            "taskRunner": {"type": "test.Nice", "niceness": 7},
            "script": "import os\nprint(os.nice(0))",
        }
    )
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert int(ctx.messages("INFO")[0]) == os.nice(0) + 7
    assert ctx.messages("WARNING") == ["lowering the priority by 7"]
    with pytest.raises(ValidationError, match="niceness: Input should be a valid integer"):
        PythonScript.model_validate(
            {"taskRunner": {"type": "test.Nice", "niceness": "low"}, "script": "pass"}
        )


def test_a_runner_type_cannot_be_taken_twice(nice_runner: type[NiceRunner]) -> None:
    class Other(NiceRunner):
        type_name: ClassVar[str] = "process"

    with pytest.raises(ValueError, match="'process' is already registered"):
        register_runner(Other)
    register_runner(NiceRunner)  # registering the same class again is harmless


async def test_setting_cancel_stops_the_process_group(tmp_path: Path) -> None:
    lines: list[tuple[Stream, str]] = []
    cancel = asyncio.Event()

    def on_line(stream: Stream, line: str) -> None:
        lines.append((stream, line))
        if line == "started":
            cancel.set()

    started = time.monotonic()
    code = await ProcessRunner().run(
        ["/bin/sh", "-c", "sleep 60 & echo $! > child.pid; echo started; wait"],
        env=dict(os.environ),
        cwd=tmp_path,
        on_line=on_line,
        cancel=cancel,
    )
    assert time.monotonic() - started < 3
    assert code == -15  # SIGTERM
    assert lines == [("stdout", "started")]
    assert await wait_dead(int((tmp_path / "child.pid").read_text()))


async def test_a_context_flagging_a_kill_stops_the_script(workdir: Path) -> None:
    ctx = context(workdir)  # a kill only flagged (ctx.cancelled), the task not cancelled
    task = ShellScript(script="echo started\nsleep 60 &\necho $! > child.pid\nwait\n")
    run = asyncio.create_task(task.run(ctx))
    pid_file = workdir / "child.pid"
    for _ in range(250):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    ctx.is_cancelled = True
    with pytest.raises(TaskFailure, match="the task was cancelled: the process was killed"):
        await asyncio.wait_for(run, 5)
    assert await wait_dead(int(pid_file.read_text()))
