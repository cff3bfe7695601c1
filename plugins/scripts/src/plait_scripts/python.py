"""Python tasks: an inline script, or a list of commands, with cached pip dependencies."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from plait_sdk import Example, RunContext
from pydantic import Field, field_validator

from plait_scripts._base import Commands, RunState, ScriptTask
from plait_scripts._envs import python_environment

#: The directory put on ``PYTHONPATH``: ``from plait_script import Plait`` in a script.
HELPER_DIR = Path(__file__).resolve().parent / "_pythonpath"


class PythonTask(ScriptTask):
    """Common base of the Python tasks (not registered itself)."""

    dependencies: list[str] = Field(default_factory=list)
    """pip requirements (`requests>=2.31`, `pandas==2.2.2`, a wheel's path...) installed into
    a virtual environment before the run. The environment is built once per set of requirements
    and reused by later runs (cached under `$PLAIT_SCRIPTS_CACHE`, else
    `~/.cache/plait/venvs`); its `bin` comes first on `PATH`, so `python` and `pip` are
    the venv's. pip sees the task's `env` (`PIP_INDEX_URL`, `PIP_FIND_LINKS`...)."""

    @field_validator("dependencies", mode="before")
    @classmethod
    def _requirement_lines(cls, value: Any) -> Any:
        return value.splitlines() if isinstance(value, str) else value

    async def python(self, ctx: RunContext, run: RunState) -> tuple[str, str]:
        """Prepare the environment. Returns the command (shell syntax) that starts Python in it,
        and the executable it resolves to now."""
        inherited = run.env.get("PYTHONPATH")
        run.env["PYTHONPATH"] = (
            f"{HELPER_DIR}{os.pathsep}{inherited}" if inherited else f"{HELPER_DIR}"
        )
        word, executable = _find_python(run.env)
        if not self.dependencies:
            return word, executable
        venv = await python_environment(ctx, word, self.dependencies, run.env)
        run.env["VIRTUAL_ENV"] = str(venv)
        run.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{run.env['PATH']}"
        run.env.pop("PYTHONHOME", None)
        return "python3", str(venv / "bin" / "python3")


def _find_python(env: dict[str, str]) -> tuple[str, str]:
    """`python3` (or `python`) as found on the task's `PATH`, else Plait's own Python; and the
    executable found.

    A name rather than a path for the shell, so that a venv activated by `beforeCommands` takes
    effect.
    """
    for name in ("python3", "python"):
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return name, found
    return shlex.quote(sys.executable), sys.executable


class PythonScript(PythonTask):
    """Run an inline Python script as a subprocess in the working directory.

    The script runs from a file of the working directory, so it can import modules given in
    `inputFiles`. `from plait_script import Plait` then `Plait.outputs({"key": value})` publishes
    `outputs.<id>.vars.key` (`Plait.counter`, `Plait.timer`, `Plait.gauge` record metrics); it
    prints a `::{"outputs": {...}}::` line, which a script may also print itself. Every other
    line of stdout and stderr is logged as it is written.
    """

    type_name: ClassVar[str] = "plait.scripts.python.Script"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.python.Script",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Compute a value, publish it as an output and count rows",
            code=(
                "id: compute\n"
                "type: plait.scripts.python.Script\n"
                "script: |\n"
                "  from plait_script import Plait\n"
                "  total = sum(range(10))\n"
                '  print(f"total is {total}")\n'
                "  Plait.outputs({'total': total})\n"
                "  Plait.counter('rows', 10)"
            ),
        ),
        Example(
            title="Use a pip package (installed once, then cached) and write a file",
            code=(
                "id: report\n"
                "type: plait.scripts.python.Script\n"
                "dependencies:\n"
                "  - tabulate==0.9.0\n"
                "outputFiles:\n"
                "  - report.txt\n"
                "script: |\n"
                "  from tabulate import tabulate\n"
                "  with open('report.txt', 'w') as f:\n"
                "      f.write(tabulate([['a', 1], ['b', 2]]))"
            ),
        ),
    )

    script: str = Field(min_length=1)
    """The Python source to run (templates are rendered first)."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        python, executable = await self.python(ctx, run)
        path = self.script_file(ctx, run, ".py", self.script)
        run.direct = [executable, str(path)]
        return [f"{python} {shlex.quote(str(path))}"]


class PythonCommands(PythonTask):
    """Run shell commands that use Python (`python main.py`...) in the working directory.

    With `dependencies`, the commands run with the cached venv's `bin` first on `PATH`. Python
    code can `from plait_script import Plait` (on `PYTHONPATH`) to publish outputs and metrics.
    """

    type_name: ClassVar[str] = "plait.scripts.python.Commands"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.python.Commands",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Run a Python file given inline, with an argument",
            code=(
                "id: etl\n"
                "type: plait.scripts.python.Commands\n"
                "inputFiles:\n"
                "  main.py: |\n"
                "    import sys\n"
                "    print('processing', sys.argv[1])\n"
                "commands:\n"
                '  - python main.py "{{ inputs.day }}"'
            ),
        ),
    )

    commands: Commands
    """The commands to run, one after the other, in the same shell."""

    async def prepare(self, ctx: RunContext, run: RunState) -> list[str]:
        await self.python(ctx, run)
        return list(self.commands)
