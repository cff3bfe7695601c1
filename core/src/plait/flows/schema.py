"""The JSON Schema of whole flow files, for editors (``plait flows schema``)."""

from __future__ import annotations

from typing import Any

from plait_sdk import DocumentedSchema, type_schema

from plait.flows._model import TASK_COMMON_KEYS, Flow, TaskSpec, TriggerSpec
from plait.plugins import TypeInfo, TypeRegistry

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def flow_schema(registry: TypeRegistry) -> dict[str, Any]:
    """Flow-file schema with ``tasks`` items a ``oneOf`` over every registered task type."""
    schema = Flow.model_json_schema(
        by_alias=True,
        mode="validation",
        ref_template="#/$defs/{model}",
        schema_generator=DocumentedSchema,
    )
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    common = TaskSpec.model_json_schema(
        by_alias=True, ref_template="#/$defs/{model}", schema_generator=DocumentedSchema
    )
    defs.update(common.pop("$defs", {}))
    common_props = {k: v for k, v in common["properties"].items() if k in TASK_COMMON_KEYS}
    task_refs = []
    for info in registry.of_kind("task"):
        name = _def_name(info)
        defs[name] = _branch(info, common_props, defs)
        task_refs.append({"$ref": f"#/$defs/{name}"})
    trigger_common = TriggerSpec.model_json_schema(
        by_alias=True, schema_generator=DocumentedSchema
    )["properties"]
    trigger_common.pop("properties", None)
    trigger_refs = []
    for info in registry.of_kind("trigger"):
        name = _def_name(info)
        defs[name] = _branch(info, trigger_common, defs)
        trigger_refs.append({"$ref": f"#/$defs/{name}"})
    task_list = {"type": "array", "items": {"oneOf": task_refs}}
    props = schema["properties"]
    for key in ("tasks", "errors", "finally", "afterExecution"):
        if key in props:
            props[key] = {**task_list, "description": props[key].get("description", "")}
    props["tasks"]["minItems"] = 1
    props["triggers"] = {"type": "array", "items": {"oneOf": trigger_refs} if trigger_refs else {}}
    defs["Task"] = {"oneOf": task_refs}
    defs.pop("TaskSpec", None)
    defs.pop("TriggerSpec", None)
    schema["$schema"] = DIALECT
    schema["$id"] = "https://plait.dev/schemas/flow.json"
    schema["title"] = "Plait flow"
    retargeted: dict[str, Any] = _retarget_task_refs(schema)
    return retargeted


def _def_name(info: TypeInfo) -> str:
    return (
        "task__" + info.name.replace(".", "_")
        if info.kind == "task"
        else ("trigger__" + info.name.replace(".", "_"))
    )


def _branch(info: TypeInfo, common: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    own = type_schema(info.cls)
    defs.update(own.pop("$defs", {}))
    properties = {**common, **own.get("properties", {})}
    properties["type"] = {
        "enum": [info.name, *info.aliases],
        "description": own.get("description", ""),
    }
    return {
        "type": "object",
        "title": info.name,
        "description": own.get("description", ""),
        "properties": properties,
        "required": sorted({"id", "type", *own.get("required", [])}),
        "additionalProperties": False,
    }


def _retarget_task_refs(node: Any) -> Any:
    # Flowable tasks' children are typed TaskSpec in their models: point them at the oneOf.
    if isinstance(node, dict):
        if node.get("$ref") == "#/$defs/TaskSpec":
            return {"$ref": "#/$defs/Task"}
        return {k: _retarget_task_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_retarget_task_refs(v) for v in node]
    return node
