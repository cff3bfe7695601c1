"""Attribute docstrings become schema descriptions when a schema is asked for, not before."""

from __future__ import annotations

import linecache
import textwrap
import types
from typing import Any, ClassVar

import pytest
from plait_sdk import DocumentedSchema, Model, Task, attribute_docstrings, type_schema
from pydantic import Field


class Base(Model):
    shared: int = 0
    """Documented on the base."""
    replaced: str = ""
    """The base's words."""


class Child(Base):
    replaced: str = ""
    """The child's words."""
    explicit: str = Field(default="", description="From Field().")
    """Loses to the explicit description."""
    bare: int = 0


def test_subclass_docstrings_win_and_bases_are_inherited() -> None:
    docs = attribute_docstrings(Child)
    assert docs["shared"] == "Documented on the base."
    assert docs["replaced"] == "The child's words."
    assert "bare" not in docs
    props = Child.model_json_schema(by_alias=True, schema_generator=DocumentedSchema)["properties"]
    assert props["shared"]["description"] == "Documented on the base."
    assert props["replaced"]["description"] == "The child's words."
    assert props["explicit"]["description"] == "From Field()."
    assert "description" not in props["bare"]


def test_nested_models_are_described_too() -> None:
    class Inner(Model):
        max_keys: int = 1
        """How many keys."""

    class Outer(Task):
        type_name: ClassVar[str] = "test.Outer"
        inner: Inner = Field(default_factory=Inner)
        """The inner settings."""

    schema = type_schema(Outer)
    assert schema["properties"]["inner"]["description"] == "The inner settings."
    inner = next(d for name, d in schema["$defs"].items() if name.endswith("Inner"))
    assert inner["properties"]["maxKeys"]["description"] == "How many keys."


def test_classes_from_exec_code_are_found_by_their_recorded_line(tmp_path: Any) -> None:
    # As the Markdown examples of docs/plugins.md are run: the "file" is not Python.
    page = tmp_path / "page.md"
    code = textwrap.dedent(
        '''
        from typing import ClassVar
        from plait_sdk import Task

        class FromMarkdown(Task):
            """Made in a Markdown page."""

            type_name: ClassVar[str] = "test.FromMarkdown"
            size: int = 3
            """The size."""
        '''
    )
    page.write_text("# A page\n\n```python" + code + "```\n", "utf-8")
    module = types.ModuleType("page_module")
    exec(compile("\n\n" + code, str(page), "exec"), module.__dict__)
    linecache.checkcache(str(page))
    schema = type_schema(module.FromMarkdown)
    assert schema["properties"]["size"]["description"] == "The size."


def test_making_a_model_reads_no_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading connectors must not re-read their source (that was 1.5 ms a model)."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("source read while a model was created")

    monkeypatch.setattr(linecache, "getlines", forbidden)
    monkeypatch.setattr("inspect.getsource", forbidden)

    class Quick(Model):
        size: int = 1
        """Not read now."""

    assert Quick.model_validate({"size": 2}).size == 2
    monkeypatch.undo()
    assert attribute_docstrings(Quick) == {"size": "Not read now."}
