"""The examples in the docs are real: they validate, and they run on the real engine.

Every ```yaml block of docs/flows.md whose first line starts with ``id:`` is a whole flow. Each is
validated with the installed plugins, then run over a fresh SQLite store; it must end in SUCCESS
unless an ``<!-- expect: STATE -->`` comment right above its fence says otherwise. Problems are
reported at their line in the Markdown file. The plugin module of docs/plugins.md is loaded as a
plugin and its example flow run the same way.
"""

from __future__ import annotations

import asyncio
import re
import sys
import types
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State, load_flow, validate_flow_text
from plait.kv import KVStore
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository
from plait_sdk import ValidationError

DOCS = Path(__file__).resolve().parents[2] / "docs"
FLOWS_MD = DOCS / "flows.md"
PLUGINS_MD = DOCS / "plugins.md"
#: Secrets the examples may read with secret('NAME') or ctx.secret("NAME").
SECRETS = {"SIGNING_KEY": "docs-example-signing-key"}
#: An example must end within this many seconds.
RUN_TIMEOUT = 30.0

_FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
_EXPECT = re.compile(r"^<!--\s*expect:\s*([A-Z]+)\s*-->$")


@dataclass(frozen=True)
class Block:
    """A fenced code block of a Markdown file."""

    path: Path
    line: int
    """Line (1-based) of the block's first line of code in the Markdown file."""
    lang: str
    text: str
    expect: str | None = None
    """The state named by an ``<!-- expect: STATE -->`` comment just above the fence."""

    @property
    def where(self) -> str:
        return f"docs/{self.path.name}:{self.line}"

    @property
    def is_flow(self) -> bool:
        return self.lang == "yaml" and self.text.startswith("id:")


def code_blocks(path: Path) -> list[Block]:
    lines = path.read_text("utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        previous = next((ln.strip() for ln in reversed(lines[:index]) if ln.strip()), "")
        expect = _EXPECT.match(previous)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            body.append(lines[end])
            end += 1
        if end == len(lines):
            raise AssertionError(f"docs/{path.name}:{index + 1}: code block never closed")
        found.append(
            Block(
                path=path,
                line=index + 2,
                lang=opening.group(1),
                text="\n".join(body) + "\n",
                expect=expect.group(1) if expect else None,
            )
        )
        index = end + 1
    return found


def flow_blocks(path: Path) -> list[Block]:
    return [b for b in code_blocks(path) if b.is_flow]


FLOWS = flow_blocks(FLOWS_MD)


def _flow_id(block: Block) -> tuple[str, str]:
    ident = re.search(r"^id:\s*(\S+)", block.text, re.MULTILINE)
    namespace = re.search(r"^namespace:\s*(\S+)", block.text, re.MULTILINE)
    assert ident, f"{block.where}: a flow needs an id"
    assert namespace, f"{block.where}: a flow needs a namespace"
    return namespace.group(1), ident.group(1)


def _located(block: Block, error: ValidationError) -> str:
    """The problems of a block, at their lines in the Markdown file."""
    out = []
    for problem in error.problems:
        line = block.line + problem.line - 1 if problem.line else block.line
        column = f":{problem.column}" if problem.column else ""
        field = f" {problem.field}:" if problem.field else ""
        out.append(f"docs/{block.path.name}:{line}{column}:{field} {problem.reason}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.discover()


async def _secrets(namespace: str, name: str) -> str:
    return SECRETS[name]


@pytest.fixture
async def make_runner(tmp_path: Path) -> AsyncIterator[Callable[[PluginHost], Any]]:
    repos: list[SqlRepository] = []

    async def make(host: PluginHost) -> Runner:
        root = tmp_path / f"home{len(repos)}"
        repo = SqlRepository.sqlite(root / "plait.db")
        await repo.open()
        repos.append(repo)
        return Runner(
            repo,
            host,
            LocalStorageBackend(root / "storage"),
            secrets=_secrets,
            kv=KVStore(repo),
            poll_interval=0.05,
            rng_seed=7,
        )

    try:
        yield make
    finally:
        for repo in repos:
            await repo.close()


def _summary(execution: Execution) -> str:
    runs = "\n".join(
        f"  {r.task_id}{'' if r.iteration is None else f' #{r.iteration}'}: {r.state.value}"
        + (f" ({r.error})" if r.error else "")
        for r in execution.task_runs
    )
    return f"{execution.state.value}, error: {execution.error}\n{runs}"


async def _run(runner: Runner, block: Block, deploy_first: list[Block]) -> Execution:
    for other in deploy_first:
        await runner.deploy(other.text, file=other.where)
    flow, revision = await runner.deploy(block.text, file=block.where)
    return await asyncio.wait_for(runner.run(flow, revision, {}), RUN_TIMEOUT)


# -- docs/flows.md -------------------------------------------------------------------------------


def test_flows_page_has_examples_with_distinct_ids() -> None:
    assert len(FLOWS) >= 20, f"only {len(FLOWS)} flow examples found in docs/flows.md"
    seen: dict[tuple[str, str], str] = {}
    for block in FLOWS:
        key = _flow_id(block)
        assert key not in seen, f"{block.where}: flow {key} already defined at {seen[key]}"
        seen[key] = block.where
    for block in FLOWS:
        if block.expect is not None:
            assert block.expect in State.__members__, f"{block.where}: unknown state"


@pytest.mark.parametrize("block", FLOWS, ids=[b.where for b in FLOWS])
def test_flow_example_validates(block: Block, host: PluginHost) -> None:
    try:
        load_flow(block.text, registry=host.registry, file=block.where)
    except ValidationError as error:
        pytest.fail(f"example at {block.where} is invalid:\n{_located(block, error)}")


@pytest.mark.parametrize("block", FLOWS, ids=[b.where for b in FLOWS])
async def test_flow_example_runs(
    block: Block, host: PluginHost, make_runner: Callable[[PluginHost], Any]
) -> None:
    runner = await make_runner(host)
    # A Subflow (or ForEachItem) example calls another flow of the page: deploy the others first.
    calls = "Subflow" in block.text or "ForEachItem" in block.text
    others = [b for b in FLOWS if b is not block] if calls else []
    execution = await _run(runner, block, others)
    expected = State(block.expect or "SUCCESS")
    assert execution.state is expected, (
        f"example at {block.where} ended {_summary(execution)}\nexpected {expected.value}"
    )
    stored = await runner.repo.get_execution(execution.id)
    assert stored is not None
    assert stored.state is expected


def test_validation_example_prints_what_the_page_says(host: PluginHost) -> None:
    blocks = code_blocks(FLOWS_MD)
    broken = next(
        (i for i, b in enumerate(blocks) if b.lang == "yaml" and b.text.startswith("# ")), None
    )
    assert broken is not None, "docs/flows.md: the broken flow example is missing"
    source = blocks[broken]
    name = source.text.splitlines()[0].removeprefix("# ").strip()
    shown = next(
        b for b in blocks[broken + 1 :] if b.lang == "text" and b.text.startswith(name + ":")
    )
    problems = validate_flow_text(source.text, registry=host.registry, file=name)
    assert [str(p) for p in problems] == shown.text.splitlines(), (
        f"{shown.where}: the printed problems differ from what validation reports"
    )


# -- docs/plugins.md -----------------------------------------------------------------------------


def _plugin_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The plugin module of docs/plugins.md, imported as ``acme_plait.plugin``."""
    block = next(b for b in code_blocks(PLUGINS_MD) if b.lang == "python" and "@hookimpl" in b.text)
    module = types.ModuleType("acme_plait.plugin")
    module.__file__ = str(PLUGINS_MD)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # Padding keeps tracebacks pointing at the right line of the Markdown file.
    code = compile("\n" * (block.line - 1) + block.text, str(PLUGINS_MD), "exec")
    exec(code, module.__dict__)
    return module


async def test_plugin_example_registers_and_its_flow_runs(
    monkeypatch: pytest.MonkeyPatch, make_runner: Callable[[PluginHost], Any]
) -> None:
    module = _plugin_module(monkeypatch)
    host = PluginHost.discover(entry_points=False, extra=[module])
    record = host.records[-1]
    assert record.status == "ok", f"docs/plugins.md plugin failed to load: {record.errors}"
    assert record.types, "docs/plugins.md plugin registered no task type"
    flows = flow_blocks(PLUGINS_MD)
    assert flows, "docs/plugins.md has no example flow"
    runner = await make_runner(host)
    for block in flows:
        try:
            load_flow(block.text, registry=host.registry, file=block.where)
        except ValidationError as error:
            pytest.fail(f"example at {block.where} is invalid:\n{_located(block, error)}")
        execution = await _run(runner, block, [])
        expected = State(block.expect or "SUCCESS")
        assert execution.state is expected, (
            f"example at {block.where} ended {_summary(execution)}\nexpected {expected.value}"
        )
        text = execution.model_dump_json() + "".join(
            r.message for r in await runner.repo.logs(execution.id)
        )
        for value in SECRETS.values():
            assert value not in text, f"{block.where}: a secret leaked into outputs or logs"


def test_plugin_example_schema_has_the_documented_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait_sdk import type_schema

    module = _plugin_module(monkeypatch)
    host = PluginHost.discover(entry_points=False, extra=[module])
    page = PLUGINS_MD.read_text("utf-8")
    for type_name in host.records[-1].types:
        info = host.registry.resolve(type_name)
        assert info is not None
        schema = type_schema(info.cls)
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{type_name}.{name} has no docstring"
            assert f"`{name}`" in page, f"docs/plugins.md never mentions property `{name}`"


def test_code_blocks_are_closed_and_found(tmp_path: Path) -> None:
    for path in sorted(DOCS.glob("*.md")):
        code_blocks(path)  # raises on an unclosed fence
    probe = tmp_path / "probe.md"
    probe.write_text("text\n<!-- expect: PAUSED -->\n```yaml\nid: a\n```\n", "utf-8")
    [block] = code_blocks(probe)
    assert (block.line, block.lang, block.text, block.expect) == (4, "yaml", "id: a\n", "PAUSED")
