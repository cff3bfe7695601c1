"""Node.js tasks: an inline script, or a list of commands, with cached npm dependencies."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any, ClassVar

from plait_sdk import Example, RunContext, TaskFailure
from pydantic import Field, field_validator

from plait_scripts._base import Commands, RunState, ScriptTask
from plait_scripts._envs import node_environment

#: A script with a top-level `import`/`export` statement is run as an ES module.
_ESM = re.compile(r"^\s*(import\s*[\w{*'\"]|export\s)", re.MULTILINE)


class NodeTask(ScriptTask):
    """Common base of the Node.js tasks (not registered itself)."""

    dependencies: list[str] = Field(default_factory=list)
    """npm packages (`lodash@4`, `dayjs`...) installed before the run into a `node_modules`
    built once per set of packages and reused by later runs (cached under
    `$PLAIT_SCRIPTS_CACHE`, else `~/.cache/plait/venvs`). `require()` finds them through
    `NODE_PATH`, and their executables are on `PATH`."""

    @field_validator("dependencies", mode="before")
    @classmethod
    def _package_lines(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    async def node(self, ctx: RunContext, run: RunState) -> tuple[str, str | None]:
        """Check Node.js is there and install the dependencies; the `node` executable and the
        dependencies' `node_modules`."""
        node = shutil.which("node", path=run.env.get("PATH"))
        if node is None:
            raise TaskFailure("Node.js is not installed: no `node` on PATH")
        if not self.dependencies:
            return node, None
        npm = shutil.which("npm", path=run.env.get("PATH"))
        if npm is None:
            raise TaskFailure("npm is not installed: no `npm` on PATH (needed by dependencies)")
        modules = await node_environment(ctx, node, npm, self.dependencies, run.env) / (
            "node_modules"
        )
        inherited = run.env.get("NODE_PATH")
        run.env["NODE_PATH"] = os.pathsep.join([str(modules), *([inherited] if inherited else [])])
        run.env["PATH"] = f"{modules / '.bin'}{os.pathsep}{run.env['PATH']}"
        return node, str(modules)


class NodeScript(NodeTask):
    """Run an inline Node.js script as a subprocess in the working directory.

    A script with top-level `import` statements runs as an ES module. Print
    `::{"outputs": {"key": value}}::` on a line of its own (for instance
    `console.log('::' + JSON.stringify({outputs: {key: value}}) + '::')`) to publish
    `outputs.<id>.vars.key`.
    """

    type_name: ClassVar[str] = "plait.scripts.node.Script"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.node.Script",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Compute a value with an npm package",
            code=(
                "id: dates\n"
                "type: plait.scripts.node.Script\n"
                "dependencies:\n"
                "  - dayjs@1.11.13\n"
                "script: |\n"
                "  const dayjs = require('dayjs');\n"
                "  const next = dayjs().add(1, 'day').format('YYYY-MM-DD');\n"
                "  console.log('::' + JSON.stringify({outputs: {tomorrow: next}}) + '::');"
            ),
        ),
    )

    script: str = Field(min_length=1)
    """The JavaScript source to run (templates are rendered first)."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        node, modules = await self.node(ctx, run)
        esm = _ESM.search(self.script) is not None
        if esm and modules is not None:
            # ES modules ignore NODE_PATH: resolve packages from a node_modules next to the file.
            run.links[run.scratch / "node_modules"] = Path(modules)
            path = run.scratch / "script.mjs"
            run.files[path] = self.script
        else:
            path = self.script_file(ctx, run, ".mjs" if esm else ".js", self.script)
        run.direct = [node, str(path)]
        return [f"node {shlex.quote(str(path))}"]


class NodeCommands(NodeTask):
    """Run shell commands that use Node.js (`node main.js`, `npx ...`) in the working
    directory."""

    type_name: ClassVar[str] = "plait.scripts.node.Commands"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.node.Commands",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Run a JavaScript file given inline",
            code=(
                "id: greet\n"
                "type: plait.scripts.node.Commands\n"
                "inputFiles:\n"
                "  main.js: |\n"
                "    console.log(`hello ${process.argv[2]}`);\n"
                "commands:\n"
                "  - node main.js world"
            ),
        ),
    )

    commands: Commands
    """The commands to run, one after the other, in the same shell."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        await self.node(ctx, run)
        return list(self.commands)
