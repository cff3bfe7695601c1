"""Older Kestra spellings that still run: rewritten to the current forms, each with a warning.

Kestra keeps accepting forms it has deprecated (``taskDefaults``, inputs named by ``name``,
task types under ``io.kestra.core.tasks.*``...), so flows written years ago still run there. Plait
accepts them too: :func:`modernize` rewrites a flow's data in place to the current forms and
returns one :class:`Deprecation` per rewrite, which validation reports as a warning (never an
error) naming the new form, and which ``plait flows upgrade`` writes back into the file.

The same walk runs on plain data (validation) and on ruamel.yaml's round-trip tree (upgrade):
both are dicts and lists, and renaming a key keeps its place (and, in a round-trip tree, its
comments), so an upgraded file keeps its layout.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from plait.safeyaml import Path, dotted

#: Kestra's packages before 0.17, by their current names.
_PACKAGES = (
    ("io.kestra.core.tasks.log.", "io.kestra.plugin.core.log."),
    ("io.kestra.core.tasks.debugs.", "io.kestra.plugin.core.debug."),
    ("io.kestra.core.tasks.flows.", "io.kestra.plugin.core.flow."),
    ("io.kestra.core.tasks.executions.", "io.kestra.plugin.core.execution."),
    ("io.kestra.core.tasks.storages.", "io.kestra.plugin.core.storage."),
    ("io.kestra.core.tasks.states.", "io.kestra.plugin.core.state."),
    ("io.kestra.core.tasks.outputs.", "io.kestra.plugin.core.output."),
    ("io.kestra.core.tasks.templating.", "io.kestra.plugin.core.templating."),
    ("io.kestra.core.tasks.kv.", "io.kestra.plugin.core.kv."),
    ("io.kestra.core.tasks.trigger.", "io.kestra.plugin.core.trigger."),
    ("io.kestra.core.models.triggers.types.", "io.kestra.plugin.core.trigger."),
    ("io.kestra.core.tasks.", "io.kestra.plugin.core."),
    ("io.kestra.plugin.fs.http.", "io.kestra.plugin.core.http."),
)

_PURGE = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"

#: Types whose current form has another name (and property names: old -> new).
_RENAMED_TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "io.kestra.core.tasks.flows.Flow": ("io.kestra.plugin.core.flow.Subflow", {}),
    "io.kestra.core.tasks.flows.Worker": ("io.kestra.plugin.core.flow.WorkingDirectory", {}),
    "io.kestra.core.tasks.debugs.Echo": ("io.kestra.plugin.core.log.Log", {"format": "message"}),
    "io.kestra.plugin.core.debug.Echo": ("io.kestra.plugin.core.log.Log", {"format": "message"}),
    "io.kestra.core.tasks.scripts.Bash": ("io.kestra.plugin.scripts.shell.Commands", {}),
    "io.kestra.core.tasks.storages.PurgeExecution": (_PURGE, {}),
    "io.kestra.plugin.core.storage.PurgeExecution": (_PURGE, {}),
}

_PAUSES = frozenset({"io.kestra.plugin.core.flow.Pause", "plait.core.Pause"})
_SUBFLOWS = frozenset({"io.kestra.plugin.core.flow.Subflow", "plait.core.Subflow"})

#: Keys of a task holding lists of child tasks (or, for ``cases``, a map of such lists).
_CHILD_KEYS = ("tasks", "errors", "finally", "afterExecution", "then", "else", "defaults")


@dataclass(frozen=True)
class Deprecation:
    """One older form found (and rewritten) at ``path`` (in the rewritten data's terms)."""

    path: Path
    old: str
    new: str
    moved_from: Path | None = None
    """For a renamed key: its path before (positions are looked up there)."""
    rewritten: bool = True
    """False for a form that runs as it is but that no mechanical rewrite fixes."""

    @property
    def path_text(self) -> str:
        return dotted(self.path)

    note: str | None = None
    """The whole message, for a form that is not deprecated but does not apply to Plait."""

    @property
    def message(self) -> str:
        if self.note is not None:
            return self.note
        if not self.rewritten:
            return f"{self.old} is deprecated: {self.new}"
        return f"{self.old} is deprecated: use {self.new} (`plait flows upgrade` rewrites it)"


def current_type(name: str, resolves: Callable[[str], bool]) -> tuple[str, dict[str, str]] | None:
    """The current Kestra name of an older task or trigger type, and its renamed properties;
    None when ``name`` is current (or has no current form Plait resolves)."""
    if name in _RENAMED_TYPES:
        new, props = _RENAMED_TYPES[name]
        return (new, props) if resolves(new) else None
    for old_prefix, new_prefix in _PACKAGES:
        if name.startswith(old_prefix):
            new = new_prefix + name[len(old_prefix) :]
            return (new, {}) if resolves(new) else None
    return None


def older_type_names(current: list[str]) -> dict[str, str]:
    """Older type names accepted for the ``current`` Kestra names given: older -> current."""
    wanted = set(current)
    found = {old: new for old, (new, _props) in _RENAMED_TYPES.items() if new in wanted}
    for name in current:
        for old_prefix, new_prefix in _PACKAGES:
            if name.startswith(new_prefix) and old_prefix != "io.kestra.core.tasks.":
                old = old_prefix + name[len(new_prefix) :]
                if current_type(old, wanted.__contains__) == (name, {}):
                    found.setdefault(old, name)
    return found


def rename_key(mapping: MutableMapping[Any, Any], old: str, new: str) -> None:
    """Rename ``old`` to ``new`` keeping its place (and a round-trip tree's comments)."""
    keys = list(mapping)
    position = keys.index(old)
    value = mapping[old]
    comments = getattr(mapping, "ca", None)
    insert = getattr(mapping, "insert", None)
    if callable(insert):  # ruamel.yaml's CommentedMap
        del mapping[old]
        insert(position, new, value)
        if comments is not None and old in comments.items:
            comments.items[new] = comments.items.pop(old)
        return
    tail = [(k, mapping.pop(k)) for k in keys[position:]]
    mapping[new] = value
    for key, item in tail[1:]:
        mapping[key] = item


def modernize(data: Any, resolves: Callable[[str], bool]) -> list[Deprecation]:
    """Rewrite older forms in a flow's data to the current ones; what was rewritten."""
    found: list[Deprecation] = []
    if not isinstance(data, MutableMapping):
        return found
    if "taskDefaults" in data and "pluginDefaults" not in data:
        rename_key(data, "taskDefaults", "pluginDefaults")
        found.append(
            Deprecation(("pluginDefaults",), "taskDefaults", "pluginDefaults", ("taskDefaults",))
        )
    inputs = data.get("inputs")
    if isinstance(inputs, list):
        for index, item in enumerate(inputs):
            if isinstance(item, MutableMapping) and "name" in item and "id" not in item:
                rename_key(item, "name", "id")
                where: Path = ("inputs", index)
                found.append(Deprecation((*where, "id"), "an input's name", "id", (*where, "name")))
    defaults = data.get("pluginDefaults")
    if isinstance(defaults, list):
        for index, item in enumerate(defaults):
            if isinstance(item, MutableMapping) and isinstance(item.get("type"), str):
                renamed = current_type(item["type"], resolves)
                if renamed is not None:
                    found.append(
                        Deprecation(
                            ("pluginDefaults", index, "type"), f"type {item['type']}", renamed[0]
                        )
                    )
                    item["type"] = renamed[0]
    _not_applicable(data, found)
    _listeners(data, found)
    for key in ("tasks", "errors", "finally", "afterExecution", "triggers"):
        _tasks(data.get(key), (key,), resolves, found)
    return found


#: Flow keys Kestra sets or uses that mean nothing to Plait: dropped, with a warning.
_NOT_APPLICABLE = {
    "deleted": "deleted is set by Kestra's flow storage; a flow file that runs is not deleted",
    "workerGroup": "workerGroup does not apply: Plait's workers take any execution",
}

#: Kestra's ExecutionStatus conditions (older and current names).
_STATUS_CONDITIONS = frozenset(
    {
        "io.kestra.plugin.core.condition.ExecutionStatus",
        "io.kestra.plugin.core.condition.ExecutionStatusCondition",
        "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
    }
)


def _not_applicable(data: MutableMapping[Any, Any], found: list[Deprecation]) -> None:
    for key, why in _NOT_APPLICABLE.items():
        if key in data:
            found.append(Deprecation((key,), key, "", note=f"{why}: ignored"))
            del data[key]


def _listeners(data: MutableMapping[Any, Any], found: list[Deprecation]) -> None:
    """Kestra's ``listeners`` (deprecated there for ``afterExecution``): each listener's tasks
    become afterExecution tasks, inside an If on ``execution.state`` when the listener has
    ExecutionStatus conditions. A listener with another condition is left for validation to
    refuse, naming it."""
    listeners = data.get("listeners")
    if not isinstance(listeners, list):
        return
    converted: list[Any] = []
    for index, listener in enumerate(listeners):
        if not isinstance(listener, MutableMapping) or not isinstance(listener.get("tasks"), list):
            return
        states = _status_states(listener.get("conditions"))
        if states is None:
            return
        if states:
            test = " and ".join(states)
            converted.append(
                {
                    "id": f"listener_{index}",
                    "type": "io.kestra.plugin.core.flow.If",
                    "condition": "{{ " + test + " }}",
                    "then": listener["tasks"],
                }
            )
        else:
            converted.extend(listener["tasks"])
    after = data.get("afterExecution")
    if after is not None and not isinstance(after, list):
        return
    rename_key(data, "listeners", "afterExecution") if after is None else data.pop("listeners")
    data["afterExecution"] = [*(after or []), *converted]
    found.append(
        Deprecation(
            ("afterExecution",),
            "listeners",
            "afterExecution",
            ("listeners",) if after is None else None,
        )
    )


def _status_states(conditions: Any) -> list[str] | None:
    """The ``execution.state`` tests of ExecutionStatus conditions; None for another kind."""
    if conditions is None:
        return []
    if not isinstance(conditions, list):
        return None
    tests = []
    for condition in conditions:
        if not isinstance(condition, MutableMapping):
            return None
        if condition.get("type") not in _STATUS_CONDITIONS:
            return None
        for key, negate in (("in", ""), ("notIn", "not ")):
            states = condition.get(key)
            if isinstance(states, list) and states:
                names = ", ".join(f"'{state}'" for state in states)
                tests.append(f"execution.state {negate}in [{names}]")
    return tests


def _runner(task: MutableMapping[Any, Any], path: Path, found: list[Any]) -> None:
    """Script tasks' ``runner: PROCESS | DOCKER`` and ``docker: {image}`` (before 0.16)."""
    runner = task.get("runner")
    if isinstance(runner, str) and runner.upper() == "PROCESS" and "taskRunner" not in task:
        rename_key(task, "runner", "taskRunner")
        task["taskRunner"] = {"type": "io.kestra.plugin.core.runner.Process"}
        found.append(
            Deprecation(
                (*path, "taskRunner"),
                "runner: PROCESS",
                "taskRunner: {type: io.kestra.plugin.core.runner.Process}",
                (*path, "runner"),
            )
        )
        return
    docker = task.get("docker")
    image = docker.get("image") if isinstance(docker, MutableMapping) else None
    if isinstance(runner, str) and runner.upper() == "DOCKER" and "containerImage" not in task:
        # Kestra's scripts run in Docker by default: the image is what is left to say.
        del task["runner"]
        found.append(Deprecation((*path,), "runner: DOCKER", "containerImage"))
    if isinstance(image, str) and "containerImage" not in task:
        rename_key(task, "docker", "containerImage")
        task["containerImage"] = image
        found.append(
            Deprecation(
                (*path, "containerImage"), "docker.image", "containerImage", (*path, "docker")
            )
        )


def _tasks(entries: Any, path: Path, resolves: Callable[[str], bool], found: list[Any]) -> None:
    if not isinstance(entries, list):
        return
    for index, task in enumerate(entries):
        if isinstance(task, MutableMapping):
            _task(task, (*path, index), resolves, found)


def _task(
    task: MutableMapping[Any, Any], path: Path, resolves: Callable[[str], bool], found: list[Any]
) -> None:
    type_name = task.get("type")
    if isinstance(type_name, str):
        renamed = current_type(type_name, resolves)
        if renamed is not None:
            new, props = renamed
            task["type"] = new
            found.append(Deprecation((*path, "type"), f"type {type_name}", new))
            for old_prop, new_prop in props.items():
                if old_prop in task and new_prop not in task:
                    rename_key(task, old_prop, new_prop)
                    found.append(
                        Deprecation(
                            (*path, new_prop),
                            f"{type_name}'s {old_prop}",
                            new_prop,
                            (*path, old_prop),
                        )
                    )
    _runner(task, path, found)
    if task.get("type") in _PAUSES and task.get("tasks"):
        found.append(
            Deprecation(
                (*path, "tasks"),
                "a Pause's tasks",
                "write them after the Pause (they run once it is resumed)",
                rewritten=False,
            )
        )
    if task.get("type") in _SUBFLOWS and isinstance(task.get("outputs"), MutableMapping):
        found.append(
            Deprecation(
                (*path, "outputs"),
                "a Subflow's outputs",
                "declare outputs on the subflow's flow (they are read from the subflow "
                "execution the same way)",
                rewritten=False,
            )
        )
    retry = task.get("retry")
    if isinstance(retry, MutableMapping) and "maxAttempt" in retry and "maxAttempts" not in retry:
        rename_key(retry, "maxAttempt", "maxAttempts")
        where = (*path, "retry")
        found.append(
            Deprecation(
                (*where, "maxAttempts"), "maxAttempt", "maxAttempts", (*where, "maxAttempt")
            )
        )
    for key in _CHILD_KEYS:
        _tasks(task.get(key), (*path, key), resolves, found)
    cases = task.get("cases")
    if isinstance(cases, MutableMapping):
        for case, entries in cases.items():
            _tasks(entries, (*path, "cases", case), resolves, found)
