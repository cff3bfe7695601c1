"""JSON Schema of task and trigger types, derived from their pydantic models."""

from __future__ import annotations

import inspect
from typing import Any

from plait_sdk._docstrings import DocumentedSchema
from plait_sdk._task import Task
from plait_sdk._trigger import Trigger


def type_schema(cls: type[Task] | type[Trigger]) -> dict[str, Any]:
    """The JSON Schema of a task or trigger type: properties, outputs, docs and examples.

    The schema is the properties model's schema (camelCase names, defaults, field docstrings as
    descriptions) plus ``x-plait`` metadata. Feeds ``plait plugins doc``, the flow-file schema, the
    API and the registry.

    Example::

        >>> from plait_sdk import Task
        >>> class Hello(Task):
        ...     '''Say hello.'''
        ...     type_name = "acme.Hello"
        ...     name: str
        >>> type_schema(Hello)["properties"]["name"]["type"]
        'string'
    """
    schema = cls.model_json_schema(
        by_alias=True, mode="validation", schema_generator=DocumentedSchema
    )
    schema["title"] = cls.type_name or cls.__name__
    doc = inspect.getdoc(cls)
    base_doc = next((inspect.getdoc(b) for b in cls.__mro__[1:] if b.__doc__), None)
    if doc and doc != base_doc:
        schema["description"] = doc
    else:
        schema.pop("description", None)
    meta: dict[str, Any] = {
        "type": cls.type_name,
        "aliases": list(cls.aliases),
        "version": cls.type_version,
        "kind": "trigger" if issubclass(cls, Trigger) else "task",
        "examples": [e.dump() for e in cls.examples],
    }
    if issubclass(cls, Task):
        meta["flowable"] = cls.flowable
        output = cls.output_model()
        if output is not None:
            meta["outputs"] = output.model_json_schema(
                by_alias=True, mode="serialization", schema_generator=DocumentedSchema
            )
    schema["x-plait"] = meta
    return schema
