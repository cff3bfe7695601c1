"""Loading a flow file: parse, validate everything at once, resolve types, report precisely."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any, TypeVar

import pydantic
from plait_sdk import CHILD_TASK_PARSER, ChildFlow, UserError, ValidationError

from plait.flows._errors import did_you_mean, field_names, problems_from
from plait.flows._flowable import FlowableTask
from plait.flows._inputs import check_declarations
from plait.flows._legacy import modernize
from plait.flows._model import (
    TRIGGER_COMMON_KEYS,
    Flow,
    FlowOutput,
    Input,
    PluginDefault,
    TaskSpec,
    TriggerSpec,
)
from plait.limits import limits
from plait.plugins import (
    TypeInfo,
    TypeRegistry,
    UnknownVersion,
    installed,
    requirement_problems,
    unknown_blueprint,
    version_problem,
)
from plait.safeyaml import Document, Path, dotted, parse, safe_load, too_large
from plait.templating import TemplateEngine, TemplateSyntaxError, is_template

_checker = TemplateEngine()
#: Child task entries of a flowable (``TaskList`` fields) are parsed into the core's TaskSpec.
_CHILD_CONTEXT = {CHILD_TASK_PARSER: TaskSpec.model_validate}
M = TypeVar("M", bound=pydantic.BaseModel)


class _Context:
    def __init__(
        self,
        doc: Document,
        file: str | None,
        registry: TypeRegistry,
        templates: TemplateEngine | None = None,
    ) -> None:
        self.doc = doc
        self.file = file
        self.registry = registry
        # The engine with the installed plugins' filters and functions, when given.
        self.templates = templates or _checker
        self.problems: list[UserError] = list(doc.problems)
        self.warnings: list[UserError] = []

    def add(self, path: Path, reason: str, *, at_key: bool = False) -> None:
        pos = (self.doc.keys.get(path) if at_key else None) or self.doc.position(path)
        self.problems.append(
            UserError(
                reason,
                file=self.file,
                line=pos.line if pos else None,
                column=pos.column if pos else None,
                field=dotted(path) or None,
            )
        )

    def value_at(self, path: Path) -> Any:
        current = self.doc.data
        for part in path:
            try:
                current = current[part]
            except (KeyError, IndexError, TypeError):
                return None
        return current


def load_flow(
    source: str | FsPath,
    *,
    registry: TypeRegistry,
    file: str | None = None,
    templates: TemplateEngine | None = None,
) -> Flow:
    """Parse and validate a flow; raise :class:`ValidationError` listing every problem.

    ``source`` is YAML text or a path. On success every :class:`TaskSpec` has its
    ``type_info`` resolved (``spec.type`` rewritten to the canonical name) and, for a flowable
    type, its validated ``flowable`` model with the children parsed.
    """
    if isinstance(source, FsPath):
        file = file or str(source)
        text = read_flow_file(source, file=file)
    else:
        text = source
    flow, problems = _validate(text, registry=registry, file=file, templates=templates)
    if problems or flow is None:
        raise ValidationError(sorted(problems, key=_order), file=file)
    return flow


def read_flow_file(path: FsPath, *, file: str | None = None) -> str:
    """A flow file's text; never reads more than ``flow_file_max_bytes`` (+1) of it."""
    file = file or str(path)
    most = limits().flow_file_max_bytes
    try:
        with path.open("rb") as stream:
            data = stream.read(most + 1)
    except OSError as error:
        raise UserError(f"cannot read the flow file: {error.strerror}", file=file) from None
    if len(data) > most:
        raise UserError(f"the file is {too_large(most)}", file=file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("the flow file is not UTF-8 text", file=file) from None


def validate_flow_text(
    text: str,
    *,
    registry: TypeRegistry,
    file: str | None = None,
    templates: TemplateEngine | None = None,
    warnings: list[UserError] | None = None,
) -> list[UserError]:
    """Every problem of a flow's text, in file order (empty when valid); the deprecated forms
    it uses are added to ``warnings`` when given."""
    found: list[UserError] = []
    try:
        _flow, problems = _validate(
            text, registry=registry, file=file, templates=templates, warnings=found
        )
    except UserError as error:  # YAML syntax
        return [error]
    if warnings is not None:
        warnings.extend(sorted(found, key=_order))
    return sorted(problems, key=_order)


def _order(problem: UserError) -> tuple[int, int, str]:
    return (problem.line or 0, problem.column or 0, problem.field or "")


def _validate(
    text: str,
    *,
    registry: TypeRegistry,
    file: str | None,
    templates: TemplateEngine | None,
    warnings: list[UserError] | None = None,
) -> tuple[Flow | None, list[UserError]]:
    doc = parse(text, file=file)
    try:
        return _validate_doc(
            doc, registry=registry, file=file, templates=templates, warnings=warnings
        )
    except RecursionError:
        # Only when yaml_max_depth was raised past what this interpreter's stack allows.
        reason = (
            "nested too deeply to be checked: set the limit yaml_max_depth "
            "(PLAIT_LIMIT_YAML_MAX_DEPTH) lower"
        )
        return None, [UserError(reason, file=file)]


def _validate_doc(
    doc: Document,
    *,
    registry: TypeRegistry,
    file: str | None,
    templates: TemplateEngine | None,
    warnings: list[UserError] | None = None,
) -> tuple[Flow | None, list[UserError]]:
    ctx = _Context(doc, file, registry, templates)
    data = doc.data
    if data is None:
        ctx.add((), "the flow file is empty")
        return None, ctx.problems
    if not isinstance(data, dict):
        ctx.add((), "a flow is a mapping with id, namespace and tasks")
        return None, ctx.problems
    _modernize(ctx)
    if warnings is not None:
        warnings.extend(ctx.warnings)

    _check_templates(ctx, data, ())
    try:
        flow = Flow.model_validate(data)
    except pydantic.ValidationError as exc:
        ctx.problems.extend(problems_from(exc, doc=doc, data=data, base=(), file=file, model=Flow))
        flow = None
    # Tasks and triggers are checked even when the flow as a whole has problems elsewhere, so
    # one run of `flows validate` reports everything.
    defaults = _plugin_defaults(data)
    ids: dict[str, Path] = {}
    for key in ("tasks", "errors", "finally", "afterExecution"):
        entries = data.get(key)
        if isinstance(entries, list):
            specs = _specs_of(flow, key)
            for index, raw in enumerate(entries):
                spec = specs[index] if specs is not None and index < len(specs) else None
                _check_task(ctx, raw, spec, (key, index), defaults, ids)
    entries = data.get("triggers")
    if isinstance(entries, list):
        seen: dict[str, Path] = {}
        for index, raw in enumerate(entries):
            trigger = flow.triggers[index] if flow and index < len(flow.triggers) else None
            _check_trigger(ctx, raw, trigger, ("triggers", index), seen)
    inputs = _valid_items(data.get("inputs"), Input)
    outputs = _valid_items(data.get("outputs"), FlowOutput)
    _check_unique(ctx, [(i.id, ("inputs", n, "id")) for n, i in inputs], "input")
    _check_unique(ctx, [(o.id, ("outputs", n, "id")) for n, o in outputs], "output")
    for problem_path, reason in check_declarations(inputs):
        ctx.add(problem_path, reason)
    if flow is not None:
        flow._warnings = sorted(ctx.warnings, key=_order)
    return (flow if not ctx.problems else None), ctx.problems


def _modernize(ctx: _Context) -> None:
    """Older Kestra forms become current ones (a warning each, positions kept)."""
    doc = ctx.doc
    for found in modernize(doc.data, lambda name: ctx.registry.resolve(name) is not None):
        if found.moved_from is not None:
            old, new = found.moved_from, found.path
            for table in (doc.values, doc.keys):
                for path in [p for p in table if p[: len(old)] == old]:
                    table[(*new, *path[len(old) :])] = table.pop(path)
        pos = (doc.keys.get(found.path) if found.moved_from else None) or doc.position(found.path)
        ctx.warnings.append(
            UserError(
                found.message,
                file=ctx.file,
                line=pos.line if pos else None,
                column=pos.column if pos else None,
                field=dotted(found.path) or None,
            )
        )


def _specs_of(flow: Flow | None, key: str) -> list[TaskSpec] | None:
    if flow is None:
        return None
    return {
        "tasks": flow.tasks,
        "errors": flow.errors,
        "finally": flow.finally_,
        "afterExecution": flow.after_execution,
    }[key]


def _valid_items(raw: Any, model: type[M]) -> list[tuple[int, M]]:
    """The entries of a list that validate (the others are reported by the Flow model)."""
    if not isinstance(raw, list):
        return []
    found = []
    for index, item in enumerate(raw):
        try:
            found.append((index, model.model_validate(item)))
        except pydantic.ValidationError:
            continue
    return found


def _check_unique(ctx: _Context, items: list[tuple[str, Path]], what: str) -> None:
    first: dict[str, Path] = {}
    for ident, path in items:
        if ident in first:
            pos = ctx.doc.position(first[ident])
            ctx.add(
                path,
                f"duplicate {what} id '{ident}' (first used at line {pos.line if pos else '?'})",
            )
        else:
            first[ident] = path


def _plugin_defaults(data: dict[str, Any]) -> list[PluginDefault]:
    raw = data.get("pluginDefaults")
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        try:
            found.append(PluginDefault.model_validate(item))
        except pydantic.ValidationError:
            continue  # reported by the Flow validation
    return found


def _apply_defaults(
    info: TypeInfo, props: dict[str, Any], defaults: list[PluginDefault]
) -> dict[str, Any]:
    """Apply matching plugin defaults (exact type, alias, or a dotted prefix of either).

    A default only sets properties the type has, so ``type: plait.core`` with ``level: INFO``
    reaches every core task that has a level and leaves the others alone.
    """
    names = {info.name, *info.aliases}
    known = set(field_names(info.cls)) | set(info.cls.model_fields)
    result = dict(props)
    for default in defaults:
        if not any(n == default.type or n.startswith(default.type + ".") for n in names):
            continue
        for key, value in default.values.items():
            if key in known and (default.forced or key not in result):
                result[key] = value
    return result


def _check_task(
    ctx: _Context,
    raw: Any,
    spec: TaskSpec | None,
    path: Path,
    defaults: list[PluginDefault],
    ids: dict[str, Path],
) -> None:
    if not isinstance(raw, dict):
        return  # reported by the model validation
    task_id = raw.get("id")
    if isinstance(task_id, str):
        if task_id in ids:
            pos = ctx.doc.position((*ids[task_id], "id"))
            ctx.add(
                (*path, "id"),
                f"duplicate task id '{task_id}' (first used at line {pos.line if pos else '?'})",
            )
        else:
            ids[task_id] = path
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        if "type" in raw:
            ctx.add((*path, "type"), "a task type is a dotted name such as plait.core.Log")
        return
    info = ctx.registry.resolve(type_name)
    if info is None or info.kind != "task":
        hint = ctx.registry.suggest(type_name, "task")
        kind = " (it is a trigger type)" if info is not None else ""
        ctx.add(
            (*path, "type"),
            f"unknown task type '{type_name}'{kind}"
            + (f"; did you mean '{hint}'?" if hint else ""),
        )
        return
    info = _pick_version(ctx, info, raw, path)
    if info is None:
        return
    cls = info.task_class
    props = {k: v for k, v in raw.items() if k not in _common_keys()}
    props = _apply_defaults(info, props, defaults)
    flowable: Any = None
    try:
        flowable = cls.model_validate(props, context=_CHILD_CONTEXT)
    except pydantic.ValidationError as exc:
        lenient = not issubclass(cls, FlowableTask)
        ctx.problems.extend(
            problems_from(
                exc, doc=ctx.doc, data=raw, base=path, file=ctx.file, model=cls, lenient=lenient
            )
        )
    if spec is not None:
        spec._written_type = type_name
        spec.type = info.name
        spec.properties = props
        spec._type_info = info
    if isinstance(flowable, FlowableTask):
        if spec is not None:
            spec._flowable = flowable
        target = flowable.child_flow()
        if flowable.starts_flows and target is not None:
            _check_self_call(ctx, target, raw, path)
        if target is not None and target.blueprint is not None:
            _check_blueprint(ctx, target, raw, path)
        if isinstance(task_id, str):
            # A task that runs as generated tasks (ForEachItem as <id>_split, <id>_items...):
            # they are resolved like written ones, and their ids are taken too.
            _take_generated(ctx, flowable.expand(task_id), path, ids)
        for child, child_path in _children(flowable, raw, path):
            child_raw = ctx.value_at(child_path)
            _check_task(ctx, child_raw, child, child_path, defaults, ids)
        graph = flowable.dependency_graph()
        if graph is not None:
            _check_graph(ctx, graph, path)


def _pick_version(
    ctx: _Context, info: TypeInfo, raw: dict[str, Any], path: Path
) -> TypeInfo | None:
    """The version of the type a task or trigger asks for with ``version:`` (the latest when it
    does not); ``None`` after reporting a version the type does not have."""
    wanted = raw.get("version")
    if wanted is None:
        return info
    if isinstance(wanted, str) and wanted.strip().isdigit():
        wanted = int(wanted)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        return None  # reported by the model validation (a whole number >= 1)
    try:
        return ctx.registry.resolve(info.name, wanted)
    except UnknownVersion as error:
        ctx.add((*path, "version"), str(error))
        return None


def _check_self_call(ctx: _Context, target: ChildFlow, raw: dict[str, Any], path: Path) -> None:
    """A task starting the very flow it is in would nest executions until a limit stops them
    (Kestra refuses it too); a templated target, or a cycle through other flows, is stopped at
    run time by ``subflow_max_depth``."""
    namespace, flow_id = target.namespace, target.flow_id
    data = ctx.doc.data
    if not isinstance(namespace, str) or not isinstance(flow_id, str):
        return
    if (namespace, flow_id) != (data.get("namespace"), data.get("id")):
        return
    if is_template(namespace) or is_template(flow_id):
        return
    key = "flowId" if "flowId" in raw else "flow_id"
    ctx.add(
        (*path, key),
        f"recursive call: this task starts the flow it is in ({namespace}.{flow_id}); "
        "a flow cannot be its own subflow",
    )


def _check_blueprint(ctx: _Context, target: ChildFlow, raw: dict[str, Any], path: Path) -> None:
    """A Subflow naming a blueprint: known, in the version range, its plugins installed, and
    given the inputs it declares (each problem says what to install or change)."""
    blueprint_id = target.blueprint or ""
    found = ctx.registry.blueprints.get(blueprint_id)
    if found is None:
        ctx.add((*path, "blueprint"), unknown_blueprint(ctx.registry, blueprint_id))
        return
    blueprint = found[0]
    problem = version_problem(blueprint, target.blueprint_version)
    if problem is not None:
        ctx.add((*path, "blueprintVersion"), problem)
    for missing in requirement_problems(blueprint, installed(ctx.registry), ctx.registry):
        ctx.add((*path, "blueprint"), missing)
    given = target.inputs
    try:
        declared = [Input.model_validate(i) for i in safe_load(blueprint.flow).get("inputs") or []]
    except (pydantic.ValidationError, UserError, AttributeError):
        return  # the blueprint's own tests report a broken blueprint
    names = {i.id for i in declared}
    for name in given:
        if name not in names:
            ctx.add(
                (*path, "inputs", name),
                f"blueprint {blueprint_id} has no input '{name}'" + did_you_mean(name, names),
                at_key=True,
            )
    for i in declared:
        if i.required and i.defaults is None and i.id not in given:
            ctx.add((*path, "inputs"), f"blueprint {blueprint_id} needs the input '{i.id}'")


def _common_keys() -> frozenset[str]:
    from plait.flows._model import TASK_COMMON_KEYS

    return TASK_COMMON_KEYS


def _take_generated(ctx: _Context, specs: list[TaskSpec], path: Path, ids: dict[str, Path]) -> None:
    for generated in specs:
        if generated.id in ids:
            pos = ctx.doc.position((*ids[generated.id], "id"))
            ctx.add(
                (*path, "id"),
                f"task id '{generated.id}' (generated from this task) is already used "
                f"at line {pos.line if pos else '?'}",
            )
        ids[generated.id] = path
        _resolve_generated(ctx, generated, path)
        if generated.flowable is not None:
            _take_generated(ctx, generated.flowable.child_specs(), path, ids)


def _resolve_generated(ctx: _Context, spec: TaskSpec, path: Path) -> None:
    """Type and model of a task generated by another (not written by the user)."""
    info = ctx.registry.resolve(spec.type)
    if info is None or info.kind != "task":
        ctx.add((*path, "type"), f"generated task '{spec.id}': unknown type '{spec.type}'")
        return
    spec.type = info.name
    spec._type_info = info
    cls = info.task_class
    if issubclass(cls, FlowableTask):
        try:
            spec._flowable = cls.model_validate(spec.properties, context=_CHILD_CONTEXT)
        except pydantic.ValidationError as exc:
            ctx.add(path, f"generated task '{spec.id}': {exc.errors()[0]['msg']}")


def _children(model: Any, raw: Any, path: Path) -> Iterator[tuple[TaskSpec, Path]]:
    """Child task specs of a validated flowable model, with their paths in the user's data."""
    if isinstance(model, TaskSpec):
        yield model, path
        return
    if isinstance(model, pydantic.BaseModel):
        for name, info in type(model).model_fields.items():
            key = info.alias or name
            if isinstance(raw, dict) and key not in raw and name in raw:
                key = name
            value = getattr(model, name)
            sub = raw.get(key) if isinstance(raw, dict) else None
            yield from _children(value, sub, (*path, key))
    elif isinstance(model, list):
        for i, item in enumerate(model):
            sub = raw[i] if isinstance(raw, list) and i < len(raw) else None
            yield from _children(item, sub, (*path, i))
    elif isinstance(model, dict):
        for k, item in model.items():
            sub = raw.get(k) if isinstance(raw, dict) else None
            yield from _children(item, sub, (*path, k))


def _check_graph(ctx: _Context, graph: dict[str, list[str]], path: Path) -> None:
    for node, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                ctx.add(
                    path,
                    f"task '{node}' depends on unknown task '{dep}'" + did_you_mean(dep, graph),
                )
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if state.get(dep) is None:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                ctx.add(path, "dependency cycle: " + " -> ".join(cycle))
                return


def _check_trigger(
    ctx: _Context, raw: Any, trigger: TriggerSpec | None, path: Path, seen: dict[str, Path]
) -> None:
    if not isinstance(raw, dict):
        return
    trigger_id = raw.get("id")
    if isinstance(trigger_id, str):
        if trigger_id in seen:
            ctx.add((*path, "id"), f"duplicate trigger id '{trigger_id}'")
        seen[trigger_id] = path
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        return
    info = ctx.registry.resolve(type_name)
    if info is None or info.kind != "trigger":
        # A task type named here gets no look-alike trigger suggested, only what it is.
        hint = None if info is not None else ctx.registry.suggest(type_name, "trigger")
        kind = " (it is a task type)" if info is not None else ""
        ctx.add(
            (*path, "type"),
            f"unknown trigger type '{type_name}'{kind}"
            + (f"; did you mean '{hint}'?" if hint else ""),
        )
        return
    info = _pick_version(ctx, info, raw, path)
    if info is None:
        return
    props = {k: v for k, v in raw.items() if k not in TRIGGER_COMMON_KEYS}
    try:
        info.trigger_class.model_validate(props)
    except pydantic.ValidationError as exc:
        ctx.problems.extend(
            problems_from(
                exc,
                doc=ctx.doc,
                data=raw,
                base=path,
                file=ctx.file,
                model=info.trigger_class,
                lenient=True,
            )
        )
    if trigger is not None:
        trigger.type = info.name
        trigger.properties = props
        trigger._type_info = info


_LINE_OFFSET_STYLES = ("|", ">")
_BLOCK_IN_EXPRESSION = re.compile(
    r"\{\{-?\s*((?:(?!\}\}).)*?\{%.*?%\}(?:(?!\}\}).)*?)\s*-?\}\}", re.S
)


def _block_in_expression(source: str) -> str | None:
    """A ``{% %}`` block written inside ``{{ }}``: the form written and the one that works
    side by side (neither Pebble nor Jinja reads a block inside an expression)."""
    found = _BLOCK_IN_EXPRESSION.search(source)
    if found is None:
        return None
    return (
        "template does not parse: a {% %} block cannot sit inside {{ }}: "
        f"written `{found.group(0)}`, write `{found.group(1).strip()}` (the block on its own, "
        "it renders its text)"
    )


def _check_templates(ctx: _Context, value: Any, path: Path) -> None:
    if isinstance(value, str):
        if is_template(value):
            try:
                ctx.templates.check(value)
            except TemplateSyntaxError as error:
                pos = ctx.doc.values.get(path)
                line = column = None
                if pos is not None:
                    offset = (error.line or 1) - (0 if pos.style in _LINE_OFFSET_STYLES else 1)
                    line = pos.line + offset
                    column = pos.column if offset == 0 else None
                ctx.problems.append(
                    UserError(
                        _block_in_expression(value) or f"template does not parse: {error.message}",
                        file=ctx.file,
                        line=line,
                        column=column,
                        field=dotted(path) or None,
                    )
                )
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(ctx, v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(ctx, v, (*path, i))
