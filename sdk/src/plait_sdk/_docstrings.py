'''Field descriptions from attribute docstrings, read when a schema is asked for.

Task properties are documented the Python way, with a string under each field::

    class Query(Task):
        sql: str
        """The statement to run."""

Pydantic can turn those into field descriptions itself (``use_attribute_docstrings``), but it
does so while each class is created, by walking stack frames and re-reading the source: about
1.5 ms a model, which made loading the connectors the largest part of ``plait run``'s start-up.
Only schemas (``plait plugins doc``, the flow-file schema, the reference docs, the API) need the
descriptions, so they are read here, once per class, when a schema is generated.
'''

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import linecache
import sys
import textwrap
import weakref
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

_WHERE: weakref.WeakKeyDictionary[type, tuple[str, int]] = weakref.WeakKeyDictionary()


def remember_definition(cls: type) -> None:
    """Note the file and line of ``cls``'s ``class`` statement (called as each model is made).

    Walking a few frames costs about a microsecond; the source itself is read only when a
    schema asks for it, and from this spot, so classes written in Markdown examples, notebooks
    or ``exec``'d code are found too.
    """
    frame = sys._getframe(1)
    while frame is not None:
        # Skip the metaclass and __init_subclass__-style hooks between here and the statement.
        code = frame.f_code.co_name
        if frame.f_globals.get("__name__") == cls.__module__ and not code.startswith("__"):
            _WHERE[cls] = (frame.f_code.co_filename, frame.f_lineno)
            return
        frame = frame.f_back  # type: ignore[assignment]


def _class_source(cls: type) -> str | None:
    where = _WHERE.get(cls)
    if where is not None:
        filename, line = where
        lines = linecache.getlines(filename)
        if lines and line <= len(lines):
            return textwrap.dedent("".join(inspect.getblock(lines[line - 1 :])))
    try:
        return textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError, SyntaxError):
        return None  # defined in a REPL or generated: no source to read


@functools.cache
def _own_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of the attributes ``cls`` itself declares (not its bases)."""
    source = _class_source(cls)
    if source is None:
        return {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)), None)
    if node is None or node.name != cls.__name__:
        return {}
    docs: dict[str, str] = {}
    body = node.body
    for statement, following in itertools.pairwise(body):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def attribute_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of every attribute of ``cls``, a subclass's own winning.

    Example::

        >>> attribute_docstrings(int)
        {}
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass is BaseModel:
            continue
        docs.update(_own_docstrings(klass))
    return docs


class DocumentedSchema(GenerateJsonSchema):
    """A schema generator that describes each field with its attribute docstring.

    An explicit ``Field(description=...)`` wins over the docstring. Pass it as
    ``schema_generator=DocumentedSchema`` to ``model_json_schema``.

    Example::

        schema = Query.model_json_schema(schema_generator=DocumentedSchema)
        assert schema["properties"]["sql"]["description"] == "The statement to run."
    """

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = cast("type[BaseModel]", schema["cls"])
        properties = json_schema.get("properties")
        if not isinstance(properties, dict):
            return json_schema
        docs = attribute_docstrings(cls)
        for name, field in cls.model_fields.items():
            doc = docs.get(name)
            if doc is None or field.description is not None:
                continue
            for key in _keys(name, field.alias, field.validation_alias):
                prop = properties.get(key)
                if isinstance(prop, dict) and "description" not in prop:
                    prop["description"] = doc
        return json_schema


def _keys(name: str, alias: str | None, validation_alias: Any) -> list[str]:
    keys = [name]
    if alias:
        keys.append(alias)
    if isinstance(validation_alias, str):
        keys.append(validation_alias)
    return keys
