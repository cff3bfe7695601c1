"""Registration, documentation and the client pool."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path
from typing import Any

import pytest
from plait.flows import load_flow
from plait.plugins import PluginHost
from plait_s3 import List, plugin
from plait_s3._client import POOL
from plait_s3.tasks import TASKS
from plait_s3.trigger import Trigger
from plait_sdk import Model, attribute_docstrings, type_schema

from .conftest import make_context

TYPES = [*TASKS, Trigger]


def test_types_are_registered_with_kestra_aliases(host: PluginHost) -> None:
    for cls in TYPES:
        name = cls.__name__
        assert cls.type_name == f"plait.s3.{name}"
        assert cls.aliases == (f"io.kestra.plugin.aws.s3.{name}",)
        info = host.registry.resolve(f"io.kestra.plugin.aws.s3.{name}")
        assert info is not None
        assert info.name == cls.type_name
    assert host.registry.resolve("plait.s3.Trigger").kind == "trigger"  # type: ignore[union-attr]


def test_entry_point_is_installed() -> None:
    found = importlib.metadata.entry_points(group="plait.plugins", name="s3")
    assert [ep.value for ep in found] == ["plait_s3.plugin"]
    assert plugin.PLAIT_PLUGIN_API == ">=1.0,<2"


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_every_property_and_output_is_documented(cls: Any) -> None:
    schema = type_schema(cls)
    assert schema.get("description"), f"{cls.__name__} has no docstring"
    assert cls.examples, f"{cls.__name__} has no Example"
    models: list[type[Model]] = [cls]
    output = cls.output_model() if hasattr(cls, "output_model") else None
    models += [output] if output else []
    seen: set[type[Model]] = set()
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        docs = attribute_docstrings(model)
        for name, field in model.model_fields.items():
            assert field.description or docs.get(name), f"{model.__name__}.{name} has no docstring"
            for arg in _classes(field.annotation):
                if issubclass(arg, Model):
                    models.append(arg)


def _classes(annotation: Any) -> list[type]:
    args = getattr(annotation, "__args__", None)
    if args is None:
        return [annotation] if isinstance(annotation, type) else []
    return [c for a in args for c in _classes(a)]


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_examples_are_valid_flows(cls: Any, host: PluginHost) -> None:
    for example in cls.examples:
        source = example.code
        if not example.full:
            key = "triggers" if cls is Trigger else "tasks"
            source = f"id: example\nnamespace: tests\n{key}:\n" + textwrap.indent(
                "- " + example.code.replace("\n", "\n  "), "  "
            )
            if cls is Trigger:
                source += "\ntasks:\n  - id: log\n    type: plait.core.Log\n    message: hi\n"
        load_flow(source, registry=host.registry, file=f"{cls.__name__}: {example.title}")


async def test_clients_are_shared_by_settings_and_closed_on_shutdown(
    conn: dict[str, Any], bucket: str, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path)
    one = List.model_validate({**conn, "bucket": bucket})
    same = List.model_validate({**conn, "bucket": bucket, "prefix": "x/"})
    other = List.model_validate({**conn, "bucket": bucket, "accessKeyId": "a", "secretKeyId": "b"})
    first, _ = await one.client(ctx)
    assert (await same.client(ctx))[0] is first
    assert (await other.client(ctx))[0] is not first
    assert len(POOL) == 2
    await plugin.plait_shutdown()
    assert len(POOL) == 0
    await one.run(ctx)  # a new client after shutdown
    assert len(POOL) == 1
