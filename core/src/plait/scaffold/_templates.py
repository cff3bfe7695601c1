"""The files of a new plugin distribution, as ``string.Template`` texts (``$`` placeholders, so
the Jinja braces of flow examples need no escaping)."""

from __future__ import annotations

PYPROJECT = """\
[project]
name = "$dist"
version = "0.1.0"
description = "Plait plugin: a greeting task and a new-files polling trigger."
readme = "README.md"
requires-python = ">=3.11"
license = "Apache-2.0"
dependencies = ["plait-sdk>=$sdk_version,<1"]

[project.optional-dependencies]
# The core is only needed to test (the harness renders templates with its engine) and to run.
test = ["plait>=$core_version", "pytest>=8", "pytest-asyncio>=0.23"]

# How Plait finds the plugin: the module holding the hook implementations.
[project.entry-points."plait.plugins"]
$short = "$module.plugin"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
filterwarnings = ["error"]
"""

INIT = '''\
"""$dist: a Plait plugin. The public API is exactly ``__all__``."""

from $module._tasks import Greet, GreetOutput
from $module._trigger import NewFiles

__all__ = ["Greet", "GreetOutput", "NewFiles"]
'''

PLUGIN = '''\
"""Entry point of $dist: registers its task and trigger types with Plait."""

from __future__ import annotations

from plait_sdk import RegisterTask, RegisterTrigger, hookimpl

from $module._tasks import Greet
from $module._trigger import NewFiles

#: The plugin API versions this plugin works with; Plait reports (not loads) it otherwise.
PLAIT_PLUGIN_API = "$api_range"


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    """``$short.Greet``."""
    register(Greet)


@hookimpl
def register_triggers(register: RegisterTrigger) -> None:
    """``$short.NewFiles``."""
    register(NewFiles)
'''

TASKS = '''\
"""The ``$short.Greet`` task."""

from __future__ import annotations

from typing import ClassVar

from plait_sdk import Example, Output, RunContext, Task


class GreetOutput(Output):
    """What ``$short.Greet`` returns."""

    message: str
    """The greeting."""
    uri: str
    """The greeting as a file in internal storage."""


class Greet(Task):
    """Greet someone, and keep the greeting as a file for the next tasks."""

    type_name: ClassVar[str] = "$short.Greet"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Greet the name given as an input",
            code='id: greet\\ntype: $short.Greet\\nname: "{{ inputs.name }}"',
        ),
    )

    name: str
    """Who to greet."""
    greeting: str = "Hello"
    """The word to greet with."""
    token: str | None = None
    """An API token, to show masking: write ``{{ secret('API_TOKEN') }}``; never logged."""

    async def run(self, ctx: RunContext) -> GreetOutput:
        if self.token is not None:
            ctx.mask(self.token)  # already masked when it came from secret(); say it anyway
            ctx.log.debug("authenticated with %s", self.token)  # shows as ******
        message = f"{self.greeting}, {self.name}!"
        ctx.log.info("greeting %s", self.name)
        ctx.metric("greetings", 1)
        uri = await ctx.storage.put("greeting.txt", message.encode())
        return GreetOutput(message=message, uri=uri)
'''

TRIGGER = '''\
"""The ``$short.NewFiles`` polling trigger."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from plait_sdk import Example, ExecutionRequest, PollingTrigger, RunContext
from pydantic import PrivateAttr


class NewFiles(PollingTrigger):
    """Start an execution when new files appear in a local folder.

    The files seen are kept on the trigger between evaluations, so each new file starts one
    execution; ``trigger.files`` lists the new names, ``trigger.at`` when they were found.
    """

    type_name: ClassVar[str] = "$short.NewFiles"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Watch an inbox folder every minute",
            code="id: inbox\\ntype: $short.NewFiles\\nfolder: /data/inbox\\ninterval: PT1M",
        ),
    )

    folder: str
    """The folder to watch."""
    pattern: str = "*"
    """A glob pattern of the file names to consider."""

    _seen: set[str] | None = PrivateAttr(default=None)

    def _list(self) -> list[str]:
        return sorted(p.name for p in Path(self.folder).glob(self.pattern) if p.is_file())

    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        names = await ctx.run_blocking(self._list)  # file system calls block: off the loop
        if self._seen is None:
            self._seen = set(names)  # the first look sets the baseline: old files start nothing
            ctx.log.info("watching %s: %d file(s) already there", self.folder, len(names))
            return None
        new = [name for name in names if name not in self._seen]
        if not new:
            return None
        self._seen.update(new)
        ctx.log.info("%d new file(s) in %s", len(new), self.folder)
        return ExecutionRequest(
            variables={"files": new, "at": ctx.now().isoformat()},
            dedup_key=f"{self.folder}:{','.join(new)}",
        )
'''

TEST_TASKS = '''\
"""Tests of ``$short.Greet`` on the SDK's harness (plait_sdk.testing): no server, no core import."""

from __future__ import annotations

from plait_sdk.testing import TaskHarness

from $module import Greet


async def test_greets_and_stores_the_greeting(task_harness: TaskHarness) -> None:
    task_harness.inputs["who"] = "Ada"
    task_harness.secrets["API_TOKEN"] = "tok-0123456789"
    result = await task_harness.run(
        Greet, {"name": "{{ inputs.who }}", "token": "{{ secret('API_TOKEN') }}"}
    )
    assert result.outputs["message"] == "Hello, Ada!"
    assert result.files == {result.outputs["uri"]: b"Hello, Ada!"}
    assert ("greetings", 1.0, "counter", {}) in result.metrics
    assert ("DEBUG", "authenticated with ******") in result.logs
    assert "tok-0123456789" not in result.log_text


async def test_a_missing_name_is_refused_as_a_flow_would_refuse_it() -> None:
    result = await TaskHarness().run(Greet, {"greeting": "Hi"})
    assert result.state == "FAILED"
    assert result.error is not None
    assert "property 'name'" in result.error
'''

TEST_TRIGGER = '''\
"""Tests of ``$short.NewFiles`` on a fake clock (plait_sdk.testing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from plait_sdk.testing import TriggerHarness

from $module import NewFiles


async def test_each_new_file_starts_one_execution(
    tmp_path: Path, trigger_harness: Callable[..., TriggerHarness]
) -> None:
    (tmp_path / "old.csv").write_text("a")
    poll = trigger_harness(NewFiles, {"folder": str(tmp_path), "interval": "PT1M"})
    first = await poll.evaluate()
    assert first.request is None  # what was there before is the baseline

    (tmp_path / "new.csv").write_text("b")
    evaluations = await poll.advance(timedelta(minutes=3))
    assert [e.started for e in evaluations] == [True, False, False]
    assert poll.executions[0].variables == {
        "files": ["new.csv"],
        "at": "2026-01-01T00:01:00+00:00",
    }
'''

README = """\
# $dist

A [Plait](https://github.com/plait-dev/plait) plugin: the `$short.Greet` task and the
`$short.NewFiles` polling trigger. The reference of both is [docs/reference.md](docs/reference.md).

## Develop

```sh
python -m venv .venv && . .venv/bin/activate
pip install -e ".[test]"
pytest                  # the tests run the task and trigger on plait_sdk.testing
plait plugins list      # $dist shows, status ok
```

`./ci.sh` is the whole CI: install, tests, the plugin loads in Plait, the reference page is
current (regenerate it with `plait sdk reference $dist --output docs/reference.md`).

## Publish

```sh
pip install build twine
python -m build                 # dist/$module-0.1.0-py3-none-any.whl and the sdist
twine upload dist/*
```

Users then `pip install $dist` next to Plait; `plait plugins list` shows it.
"""

CI = """\
#!/bin/sh
# The CI of $dist: what must hold before a merge or a release.
set -eu
cd "$$(dirname "$$0")"
python -m pip install --quiet -e ".[test]"
python -m pytest -q
# The plugin loads in Plait (status ok), not only imports.
plait plugins list --json | python -c '
import json, sys
found = [p for p in json.load(sys.stdin) if p["distribution"] == "$dist"]
if not found or found[0]["status"] != "ok":
    sys.exit(f"$dist is not loaded: {found}")
'
# The reference page matches the code (regenerate with --output).
plait sdk reference $dist --check docs/reference.md
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
.venv/
dist/
build/
"""
