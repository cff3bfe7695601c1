"""YAML parsing that keeps where every key and value was written.

PyYAML builds plain values and forgets positions, and silently keeps the last of two equal keys.
Here the node tree is composed first, then walked: every value gets a ``Position``, a repeated key
is a problem at its second occurrence, and booleans follow YAML 1.2 (only ``true``/``false``;
``yes``/``no``/``on``/``off`` stay strings, so a country code ``NO`` stays ``"NO"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml
from plait_sdk import UserError

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column of a value (or key), and its scalar style (``|`` or ``>``...)."""

    line: int
    column: int
    style: str | None = None


@dataclass
class Document:
    """A parsed YAML document: plain data plus positions of values and keys by path."""

    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    problems: list[UserError] = field(default_factory=list)

    def position(self, path: Path) -> Position | None:
        """The value's position, else its key's, else the nearest parent's."""
        for n in range(len(path), -1, -1):
            found = self.values.get(path[:n]) if n == len(path) else None
            if found is None:
                found = self.keys.get(path[:n]) or self.values.get(path[:n])
            if found is not None:
                return found
        return None


class _Resolver(yaml.resolver.Resolver):
    """SafeResolver with YAML 1.2 core-schema booleans."""


_Resolver.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


def parse(text: str, *, file: str | None = None) -> Document:
    """Parse one YAML document; a syntax error raises a located :class:`UserError`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        reason = error.problem or error.context or "invalid YAML"
        raise UserError(
            f"invalid YAML: {reason}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"invalid YAML: {error}", file=file) from None
    finally:
        loader.dispose()
    doc = Document(data=None)
    if node is None:
        return doc
    doc.data = _walk(node, (), doc, loader, file)
    return doc


def _pos(node: yaml.Node) -> Position:
    style = getattr(node, "style", None)
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style)


def _walk(node: yaml.Node, path: Path, doc: Document, loader: _Loader, file: str | None) -> Any:
    doc.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or isinstance(key, list | dict):
                doc.problems.append(
                    UserError(
                        "a mapping key must be a plain value",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        field=_dotted(path),
                    )
                )
                continue
            key = str(key)
            if key in first_seen:
                doc.problems.append(
                    UserError(
                        f"duplicate key '{key}' (first defined at line {first_seen[key]})",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        field=_dotted((*path, key)),
                    )
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            doc.keys[(*path, key)] = _pos(key_node)
            result[key] = _walk(value_node, (*path, key), doc, loader, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), doc, loader, file) for i, item in enumerate(node.value)]
    return _scalar(node, loader)


def _scalar(node: yaml.Node, loader: _Loader) -> Any:
    value = loader.construct_object(node, deep=True)
    # Dates stay text: flows pass them on to templates and JSON, where strings are expected.
    if isinstance(value, datetime | date):
        return node.value
    if isinstance(value, bytes):
        return node.value
    return value


def _dotted(path: Path) -> str:
    """``("tasks", 0, "retry")`` -> ``tasks[0].retry`` (empty for the root)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


dotted = _dotted
