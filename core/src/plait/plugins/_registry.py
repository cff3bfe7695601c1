"""The type registry: every task and trigger type, stamped with where it came from."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from plait_sdk import Blueprint, Task, Trigger

TypeKind = Literal["task", "trigger"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The plugin and distribution a registration came from."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """A registered task or trigger type."""

    name: str
    cls: type[Task] | type[Trigger]
    kind: TypeKind
    origin: Origin
    aliases: tuple[str, ...] = ()

    @property
    def task_class(self) -> type[Task]:
        assert issubclass(self.cls, Task), f"{self.name} is not a task type"
        return self.cls

    @property
    def trigger_class(self) -> type[Trigger]:
        assert issubclass(self.cls, Trigger), f"{self.name} is not a trigger type"
        return self.cls


class TypeClash(Exception):
    """A type name (or alias) is already taken by another registration."""

    def __init__(self, name: str, owner: TypeInfo) -> None:
        super().__init__(f"type name '{name}' is already registered by {owner.origin}")
        self.name = name
        self.owner = owner


@dataclass
class TypeRegistry:
    """Task and trigger types by canonical name and by alias."""

    _by_name: dict[str, TypeInfo] = field(default_factory=dict)
    _canonical: dict[str, TypeInfo] = field(default_factory=dict)
    blueprints: dict[str, tuple[Blueprint, Origin]] = field(default_factory=dict)
    """The blueprint catalogue (by id): flow validation checks a Subflow naming one."""

    def add(self, info: TypeInfo) -> None:
        """Add a type; raises :class:`TypeClash` (adding nothing) when a name is taken."""
        for name in (info.name, *info.aliases):
            owner = self._by_name.get(name)
            if owner is not None:
                raise TypeClash(name, owner)
        self._canonical[info.name] = info
        for name in (info.name, *info.aliases):
            self._by_name[name] = info

    def resolve(self, name: str) -> TypeInfo | None:
        """The type registered under ``name`` (a canonical name or an alias)."""
        return self._by_name.get(name)

    def suggest(self, name: str, kind: TypeKind | None = None) -> str | None:
        """The closest known canonical name, for a "did you mean" hint."""
        names = [n for n, i in self._by_name.items() if kind is None or i.kind == kind]
        matches = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if not matches:
            # Users often type only the last segment ("Log" for "plait.core.Log").
            tail = name.rsplit(".", 1)[-1].lower()
            matches = [n for n in names if n.rsplit(".", 1)[-1].lower() == tail][:1]
            matches = [self._by_name[m].name for m in matches]
        return matches[0] if matches else None

    def __iter__(self) -> Iterator[TypeInfo]:
        return iter(sorted(self._canonical.values(), key=lambda i: i.name))

    def __len__(self) -> int:
        return len(self._canonical)

    def of_kind(self, kind: TypeKind) -> list[TypeInfo]:
        return [i for i in self if i.kind == kind]
