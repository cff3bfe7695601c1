"""The documented examples (type Examples and README flows) validate with the real flow loader."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from plait.flows import load_flow
from plait.plugins import PluginHost
from plait_http import Download, Request, Trigger
from plait_sdk import Example

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES: list[tuple[str, Example]] = [
    (cls.type_name, example) for cls in (Request, Download, Trigger) for example in cls.examples
]


def _as_flow(type_name: str, example: Example) -> str:
    if example.full:
        return example.code
    return "id: example\nnamespace: docs\ntasks:\n" + textwrap.indent(
        "- " + textwrap.indent(example.code, "  ")[2:], "  "
    )


@pytest.mark.parametrize(
    ("type_name", "example"), EXAMPLES, ids=[f"{t}:{e.title}" for t, e in EXAMPLES]
)
def test_every_type_example_validates(type_name: str, example: Example, host: PluginHost) -> None:
    flow = load_flow(_as_flow(type_name, example), registry=host.registry, file="example.yaml")
    assert flow.id


def _readme_flows() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    return [b for b in blocks if isinstance(yaml.safe_load(b), dict) and "tasks" in b]


def test_the_readme_has_an_example_flow_per_type() -> None:
    text = "\n".join(_readme_flows())
    for cls in (Request, Download, Trigger):
        assert f"type: {cls.type_name}" in text, cls.type_name


@pytest.mark.parametrize("source", _readme_flows())
def test_every_readme_flow_validates(source: str, host: PluginHost) -> None:
    load_flow(source, registry=host.registry, file="README.md")


@pytest.mark.parametrize("cls", [Request, Download, Trigger], ids=lambda c: c.type_name)
def test_every_property_and_output_is_documented(cls: type) -> None:
    from plait_sdk import type_schema

    schema = type_schema(cls)
    models = {cls.type_name: schema, **schema.get("$defs", {})}
    outputs = schema["x-plait"].get("outputs")
    if outputs:
        models["outputs"] = outputs
    missing = [
        f"{model}.{name}"
        for model, sub in models.items()
        for name, prop in sub.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert missing == []
    assert schema["x-plait"]["examples"], "no Example"
