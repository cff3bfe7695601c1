"""YAML parsing that keeps where every key and value was written.

PyYAML builds plain values and forgets positions, and silently keeps the last of two equal keys.
Here the node tree is composed first, then walked: every value gets a ``Position``, a repeated key
is a problem at its second occurrence, and booleans follow YAML 1.2 (only ``true``/``false``;
``yes``/``no``/``on``/``off`` stay strings, so a country code ``NO`` stays ``"NO"``).

Every YAML text Plait reads (flow files, YAML inputs, the ``yaml()`` template function) is
composed by :class:`LimitedComposer`, which bounds what a small file can make the parser do:
alias uses, the node count and size once aliases are expanded (a "billion laughs" file of a few
hundred bytes), nesting depth, and recursive aliases. It counts while composing, so an expansion
is refused before it is ever built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml
from plait_sdk import UserError

from plait.limits import limits

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


_Mark = Any  # yaml.Mark, or the C extension's


class YamlLimitError(yaml.YAMLError):
    """A YAML text goes past one of the limits of :mod:`plait.limits` (at ``mark``)."""

    def __init__(self, reason: str, mark: _Mark | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark

    def __str__(self) -> str:
        if self.mark is None:
            return self.reason
        return f"line {self.mark.line + 1}, column {self.mark.column + 1}: {self.reason}"


def _limit(name: str) -> str:
    return f"limit {name}, set with PLAIT_LIMIT_{name.upper()}"


class _Guard:
    """What has been composed so far, counted as if every alias were expanded."""

    def __init__(self) -> None:
        self.limits = limits()
        self.aliases = 0
        self.nodes = 0
        self.bytes = 0
        # One entry per open collection: the height of its tallest child so far.
        self.heights: list[int] = []
        self.open_anchors: dict[str, _Mark] = {}
        self.last: _Mark | None = None
        # Anchor -> (expanded nodes, expanded bytes, height) of the node it names.
        self.anchored: dict[str, tuple[int, int, int]] = {}

    def alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor
        mark = event.start_mark
        if anchor in self.open_anchors:
            line = self.open_anchors[anchor].line + 1
            raise YamlLimitError(
                f"recursive alias *{anchor}: it refers to the anchor &{anchor} (line {line}) "
                "that contains it",
                mark,
            )
        self.aliases += 1
        if self.aliases > self.limits.yaml_max_aliases:
            raise YamlLimitError(
                f"more than {self.limits.yaml_max_aliases} aliases (*name) "
                f"({_limit('yaml_max_aliases')})",
                mark,
            )
        found = self.anchored.get(anchor or "")
        if found is None:
            return  # an undefined alias: PyYAML says so
        nodes, size, height = found
        self._count(nodes, size, mark)
        self._depth(len(self.heights) + height, mark)
        if self.heights:
            self.heights[-1] = max(self.heights[-1], height)

    def enter(self, event: yaml.Event) -> tuple[int, int]:
        """Count a node about to be composed; returns the counts before it."""
        before = (self.nodes, self.bytes)
        mark = self.last = event.start_mark
        if isinstance(event, yaml.ScalarEvent):
            self._count(1, len(event.value.encode("utf-8", "surrogatepass")), mark)
        else:
            self._count(1, 0, mark)
            self._depth(len(self.heights) + 1, mark)
            self.heights.append(0)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.open_anchors[anchor] = mark
        return before

    def leave(self, node: yaml.Node, anchor: str | None, before: tuple[int, int]) -> None:
        height = 0
        if not isinstance(node, yaml.ScalarNode):
            height = self.heights.pop() + 1
        if self.heights:
            self.heights[-1] = max(self.heights[-1], height)
        if anchor is not None:
            self.open_anchors.pop(anchor, None)
            self.anchored[anchor] = (self.nodes - before[0], self.bytes - before[1], height)

    def _count(self, nodes: int, size: int, mark: _Mark) -> None:
        self.nodes += nodes
        self.bytes += size
        if self.nodes > self.limits.yaml_max_nodes:
            raise YamlLimitError(
                f"more than {self.limits.yaml_max_nodes} values once aliases are expanded "
                f"({_limit('yaml_max_nodes')})",
                mark,
            )
        if self.bytes > self.limits.flow_file_max_bytes:
            raise YamlLimitError(
                f"larger than {self.limits.flow_file_max_bytes} bytes once aliases are "
                f"expanded ({_limit('flow_file_max_bytes')})",
                mark,
            )

    def _depth(self, depth: int, mark: _Mark) -> None:
        if depth > self.limits.yaml_max_depth:
            raise YamlLimitError(
                f"nested more than {self.limits.yaml_max_depth} levels deep "
                f"({_limit('yaml_max_depth')})",
                mark,
            )


#: Longest number read (Python's own limit on the digits of an integer read from text).
MAX_NUMBER_CHARS = 4300
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


class LimitedComposer(yaml.composer.Composer):
    """PyYAML's composer, bounded by the ``yaml_*`` limits (see the module docstring).

    Mix it in before a PyYAML loader (``class L(LimitedComposer, yaml.SafeLoader)``); a limit
    hit raises :class:`YamlLimitError`, a :class:`yaml.YAMLError` located at the offending node.
    """

    _guard: _Guard
    peek_event: Callable[[], yaml.Event]

    def compose_document(self) -> yaml.Node | None:
        self._guard = _Guard()
        try:
            return super().compose_document()
        except RecursionError:
            # yaml_max_depth was raised past what this interpreter's stack allows.
            raise YamlLimitError(
                f"nested too deeply to be read ({len(self._guard.heights)} levels): set the "
                "limit yaml_max_depth (PLAIT_LIMIT_YAML_MAX_DEPTH) lower",
                self._guard.last,
            ) from None

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._guard.alias(event)
            return super().compose_node(parent, index)
        anchor: str | None = getattr(event, "anchor", None)
        before = self._guard.enter(event)
        node = super().compose_node(parent, index)
        assert node is not None  # a scalar, sequence or mapping event composes a node
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            # Python refuses to read longer integers, and a YAML 1.1 base-60 one (1:2:3...)
            # takes quadratic time: a number this long is a mistake or an attack.
            raise YamlLimitError(
                f"a number of more than {MAX_NUMBER_CHARS} characters (quote it to make it text)",
                node.start_mark,
            )
        self._guard.leave(node, anchor, before)
        return node


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    LimitedComposer,
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
        # Mapping node id -> how many of its leading pairs came from merge keys (<<).
        self.merged: dict[int, int] = {}

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's merge, once per node, remembering which pairs it brought in: the keys
        written in the mapping override them (a duplicate only among written keys)."""
        if id(node) in self.merged:
            return
        written = sum(1 for key, _ in node.value if key.tag != _MERGE)
        super().flatten_mapping(node)  # calls this method for the mappings it merges
        self.merged[id(node)] = len(node.value) - written


def parse(text: str, *, file: str | None = None) -> Document:
    """Parse one YAML document; a syntax error or a limit hit raises a located
    :class:`UserError`."""
    check_size(text, file=file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except YamlLimitError as error:
        mark = error.mark
        raise UserError(
            error.reason,
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
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


def check_size(text: str, *, file: str | None = None) -> None:
    """Refuse a YAML text larger than ``flow_file_max_bytes`` (in UTF-8) with a UserError."""
    if _oversized(text):
        raise UserError(f"the file is {too_large(limits().flow_file_max_bytes)}", file=file)


def too_large(most: int) -> str:
    """The end of the message for a text over ``flow_file_max_bytes``."""
    return f"larger than {most} bytes ({_limit('flow_file_max_bytes')})"


def _oversized(text: str) -> bool:
    most = limits().flow_file_max_bytes
    # A character is at most 4 bytes: only a text near the limit needs encoding to tell.
    return len(text) > most or (
        len(text) * 4 > most and len(text.encode("utf-8", "surrogatepass")) > most
    )


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within the limits (a limit hit raises :class:`YamlLimitError`)."""
    if _oversized(text):
        most = limits().flow_file_max_bytes
        raise YamlLimitError(f"the YAML text is {too_large(most)}", None)
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader
    except (ValueError, KeyError, AttributeError, TypeError) as error:
        # An explicit tag the value does not fit (!!int abc): PyYAML lets these through.
        raise yaml.YAMLError(f"a value does not fit its tag ({type(error).__name__})") from None


class _SafeLoader(LimitedComposer, yaml.SafeLoader):
    """PyYAML's SafeLoader (YAML 1.1 as PyYAML reads it), within the limits."""


def _pos(node: yaml.Node) -> Position:
    style = getattr(node, "style", None)
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style)


def _walk(node: yaml.Node, path: Path, doc: Document, loader: _Loader, file: str | None) -> Any:
    doc.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or node.start_mark
            raise UserError(
                f"invalid YAML: {error.problem}",
                file=file,
                line=mark.line + 1,
                column=mark.column + 1,
            ) from None
        merged = loader.merged[id(node)]
        written = {
            str(_scalar(k, loader, file))
            for k, _ in node.value[merged:]
            if isinstance(k, yaml.ScalarNode)
        }
        result: dict[str, Any] = {}
        first_seen: dict[Any, int] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = _scalar(key_node, loader, file) if isinstance(key_node, yaml.ScalarNode) else None
            if index < merged:
                # Brought in by <<: the first mapping merged wins, a written key overrides.
                if key is None or isinstance(key, list | dict):
                    continue
                key = str(key)
                if key in written or key in result:
                    continue
                doc.keys[(*path, key)] = _pos(key_node)
                result[key] = _walk(value_node, (*path, key), doc, loader, file)
                continue
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
    return _scalar(node, loader, file)


def _scalar(node: yaml.Node, loader: _Loader, file: str | None = None) -> Any:
    try:
        value = loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError) as error:
        # An explicit tag the value does not fit (!!int abc, !!timestamp bad, !!python/...).
        tag = str(node.tag)
        tag = "!!" + tag.removeprefix(_STD) if tag.startswith(_STD) else tag
        known = not isinstance(error, yaml.constructor.ConstructorError)
        shown = repr(node.value) if len(node.value) <= 40 else repr(node.value[:40]) + "..."
        raise UserError(
            f"invalid YAML: cannot read {shown} as {tag}" if known else f"unknown tag {tag}",
            file=file,
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
        ) from None
    # Dates stay text: flows pass them on to templates and JSON, where strings are expected.
    if isinstance(value, datetime | date):
        return node.value
    if isinstance(value, bytes):
        return node.value
    return value


_STD = "tag:yaml.org,2002:"
_MERGE = _STD + "merge"


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
