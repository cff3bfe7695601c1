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
    version: int = 1
    """The type version (``type_version`` of the class); a type may be registered in several."""

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


class UnknownVersion(LookupError):
    """A type exists, but not in the version asked for."""

    def __init__(self, info: TypeInfo, version: int, versions: list[int]) -> None:
        known = ", ".join(map(str, versions))
        super().__init__(f"type '{info.name}' has no version {version}; its versions are {known}")
        self.info = info
        self.version = version
        self.versions = versions


@dataclass
class TypeRegistry:
    """Task and trigger types by canonical name and by alias, each in one or more versions.

    A plugin may register one type name several times with different ``type_version`` values
    (as n8n's ``typeVersion``), so it can change a type's behaviour without breaking flows written
    for the old one. Lookups without a version get the latest; iteration yields the latest of
    each type, :meth:`all_versions` every one.
    """

    _by_name: dict[str, TypeInfo] = field(default_factory=dict)
    _canonical: dict[str, TypeInfo] = field(default_factory=dict)
    _versions: dict[str, dict[int, TypeInfo]] = field(default_factory=dict)
    blueprints: dict[str, tuple[Blueprint, Origin]] = field(default_factory=dict)
    """The blueprint catalogue (by id): flow validation checks a Subflow naming one."""

    def add(self, info: TypeInfo) -> None:
        """Add a type; raises :class:`TypeClash` (adding nothing) when a name is taken.

        A name is free for another version of the same type from the same distribution; a
        version already registered, or the name of another type, is a clash.
        """
        versions = self._versions.get(info.name, {})
        for name in (info.name, *info.aliases):
            owner = self._by_name.get(name)
            if owner is None:
                continue
            same_type = owner.name == info.name and owner.kind == info.kind
            if not same_type or owner.origin.distribution != info.origin.distribution:
                raise TypeClash(name, owner)
            if info.version in versions:
                raise TypeClash(f"{name}@{info.version}", versions[info.version])
        versions = self._versions.setdefault(info.name, {})
        versions[info.version] = info
        latest = versions[max(versions)]
        self._canonical[info.name] = latest
        for name in (latest.name, *{a for v in versions.values() for a in v.aliases}):
            self._by_name[name] = latest

    def resolve(self, name: str, version: int | None = None) -> TypeInfo | None:
        """The type registered under ``name`` (a canonical name or an alias).

        Without ``version`` the latest; with one that does not exist, raises
        :class:`UnknownVersion` (the type exists: the caller says which versions do).
        """
        info = self._by_name.get(name)
        if info is None or version is None:
            return info
        found = self._versions[info.name].get(version)
        if found is None:
            raise UnknownVersion(info, version, self.versions(info.name))
        return found

    def versions(self, name: str) -> list[int]:
        """The registered versions of a type (by canonical name or alias), oldest first."""
        info = self._by_name.get(name)
        return sorted(self._versions[info.name]) if info is not None else []

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

    def all_versions(self) -> list[TypeInfo]:
        """Every registered version of every type, by name then version."""
        return [
            self._versions[info.name][v] for info in self for v in sorted(self._versions[info.name])
        ]

    def of_kind(self, kind: TypeKind) -> list[TypeInfo]:
        return [i for i in self if i.kind == kind]
