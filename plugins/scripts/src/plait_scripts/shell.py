"""Shell tasks: an inline script, or a list of commands."""

from __future__ import annotations

import shlex
from typing import ClassVar

from plait_sdk import Example, RunContext
from pydantic import Field

from plait_scripts._base import Commands, RunState, ScriptTask


class ShellScript(ScriptTask):
    """Run an inline shell script in the working directory (`/bin/sh` unless `interpreter`
    says otherwise).

    The script is sourced by the interpreter after `beforeCommands`, in the same shell. Print
    `::{"outputs": {"key": "value"}}::` on a line of its own to publish
    `outputs.<id>.vars.key`.
    """

    type_name: ClassVar[str] = "plait.scripts.shell.Script"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.shell.Script",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Write a file and publish a value",
            code=(
                "id: hello\n"
                "type: plait.scripts.shell.Script\n"
                "outputFiles:\n"
                "  - hello.txt\n"
                "script: |\n"
                '  echo "Hello from {{ flow.id }}" > hello.txt\n'
                '  echo \'::{"outputs":{"lines":1}}::\''
            ),
        ),
    )

    script: str = Field(min_length=1)
    """The shell script to run (templates are rendered first)."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        path = self.script_file(ctx, run, ".sh", self.script)
        return [f". {shlex.quote(str(path))}"]


class ShellCommands(ScriptTask):
    """Run shell commands, one after the other in the same shell, in the working directory."""

    type_name: ClassVar[str] = "plait.scripts.shell.Commands"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.shell.Commands",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Process a file of an earlier task with bash",
            code=(
                "id: count\n"
                "type: plait.scripts.shell.Commands\n"
                "interpreter: [/bin/bash, -c]\n"
                "inputFiles:\n"
                "  data.csv: \"{{ outputs.extract.outputFiles['data.csv'] }}\"\n"
                "commands:\n"
                "  - wc -l < data.csv\n"
                '  - echo "::{\\"outputs\\":{\\"rows\\":$(wc -l < data.csv)}}::"'
            ),
        ),
    )

    commands: Commands
    """The commands to run, one after the other, in the same shell."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        return list(self.commands)
