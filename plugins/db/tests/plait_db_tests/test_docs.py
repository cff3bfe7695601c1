"""The README's flows and the tasks' documented examples are valid; the SQLite one runs."""

from __future__ import annotations

import re
from pathlib import Path

import plait_db.plugin
import pytest
import yaml
from plait.flows import State, load_flow
from plait.plugins import PluginHost
from plait_db import Batch, Queries, Query, Trigger
from plait_sdk import Task, type_schema

from .conftest import Harness

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_flows() -> list[str]:
    return [b for b in _BLOCK.findall(README.read_text("utf-8")) if b.startswith("id:")]


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.discover(entry_points=False, extra=[plait_db.plugin])


def test_readme_flows_validate(host: PluginHost) -> None:
    flows = readme_flows()
    assert len(flows) >= 3
    for source in flows:
        load_flow(source, registry=host.registry, file="README.md")


@pytest.mark.parametrize("cls", [Query, Queries, Batch, Trigger])
def test_examples_validate(cls: type[Task] | type[Trigger], host: PluginHost) -> None:
    assert cls.examples
    for example in cls.examples:
        if example.full:
            load_flow(example.code, registry=host.registry, file=example.title)
            continue
        task = yaml.safe_load(example.code)
        assert task.pop("type") == cls.type_name
        task.pop("id")
        cls.model_validate(task)


@pytest.mark.parametrize("cls", [Query, Queries, Batch, Trigger])
def test_every_property_and_output_is_documented(cls: type[Task] | type[Trigger]) -> None:
    schema = type_schema(cls)
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{cls.type_name}.{name} has no docstring"
    outputs = schema["x-plait"].get("outputs", {"properties": {}})["properties"]
    for name, prop in outputs.items():
        assert prop.get("description"), f"{cls.type_name} output {name} has no docstring"
    [secret, _] = schema["properties"]["password"]["anyOf"]
    assert (secret["format"], secret["writeOnly"]) == ("password", True)


async def test_the_readme_sqlite_flow_runs(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [source] = [f for f in readme_flows() if f.startswith("id: sqlite_report")]
    execution = await harness.run(source)
    assert execution.state is State.SUCCESS, execution.error
    [total] = [r for r in execution.task_runs if r.task_id == "total"]
    assert total.outputs == {"row": {"total": 19.5}, "size": 1}
