"""SQL text handling: split a script into statements and find its ``:name`` placeholders.

One lexical scan does both, so a ``;`` or a ``:word`` inside a string literal, a quoted identifier,
a comment or a PostgreSQL dollar-quoted body is never mistaken for a separator or a placeholder,
and a PostgreSQL ``::type`` cast is never mistaken for a placeholder.

SQLAlchemy's ``text()`` has its own, purely textual, placeholder syntax; :meth:`Statement.clause`
escapes every colon that is not one of our placeholders so ``text()`` sees exactly ours. Values are
always bound by the driver, never written into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import BindParameter, TextClause, bindparam, text
from sqlalchemy.types import NullType

Dialect = Literal["postgresql", "mysql", "sqlite"]

_NAME = re.compile(r"[^\W\d]\w*")
_WORD = re.compile(r"\w+")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_SPACE = re.compile(r"\s*")
#: Statements starting with one of these return rows: they may be streamed with a server-side
#: cursor. Others (INSERT ... RETURNING included) are executed normally and still fetched.
ROW_KEYWORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "PRAGMA"}
)
#: ``END`` followed by one of these closes an IF / LOOP ... block, not a BEGIN or a CASE.
_END_OF_OTHER = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})


@dataclass(frozen=True)
class Placeholder:
    """A ``:name`` placeholder; ``start``/``end`` span the text it replaces in the statement."""

    name: str
    start: int
    end: int
    in_list: bool = False
    """Written ``IN :name`` or ``IN (:name)``: a list value expands to ``IN (v1, v2, ...)``."""
    parenthesised: bool = False
    """Written ``IN (:name)``: the span includes the parentheses."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement (no trailing ``;``) and its placeholders."""

    sql: str
    placeholders: tuple[Placeholder, ...] = ()
    keyword: str = ""
    """The statement's first keyword, upper-cased (comments and parentheses skipped)."""
    returning: bool = False
    """The statement has a ``RETURNING`` clause (outside literals and comments)."""

    @property
    def names(self) -> list[str]:
        """Placeholder names in order of first appearance."""
        return list(dict.fromkeys(p.name for p in self.placeholders))

    @property
    def positional(self) -> bool:
        """Its placeholders are JDBC-style ``?`` (parsed with ``positional=True``)."""
        return any(p.name.startswith("?") for p in self.placeholders)

    @property
    def returns_rows_surely(self) -> bool:
        """True when the first keyword is one of a row-returning statement (SELECT, WITH...)."""
        return self.keyword in ROW_KEYWORDS

    def clause(self, values: Mapping[str, Any]) -> TextClause:
        """The statement as a SQLAlchemy ``text()`` with ``values`` bound to its placeholders.

        ``values`` must hold every placeholder name. A list bound with ``IN :name`` is expanded
        (one bound value per item; an empty list matches nothing).
        """
        parts: list[str] = []
        position = 0
        expanding: set[str] = set()
        for placeholder in self.placeholders:
            parts.append(_escape(self.sql[position : placeholder.start]))
            value = values[placeholder.name]
            if placeholder.in_list and isinstance(value, list | tuple):
                expanding.add(placeholder.name)
                parts.append(f":{placeholder.name}")
            elif placeholder.parenthesised:
                parts.append(f"(:{placeholder.name})")
            else:
                parts.append(f":{placeholder.name}")
            position = placeholder.end
        parts.append(_escape(self.sql[position:]))
        clause = text("".join(parts))
        # NullType: no type inferred from the value, so no cast is rendered (the asyncpg dialect
        # would write "$1::VARCHAR" for a str); the driver and the server type the value.
        binds: list[BindParameter[Any]] = [
            bindparam(name, value=values[name], type_=NullType(), expanding=name in expanding)
            for name in self.names
        ]
        return clause.bindparams(*binds) if binds else clause


def _escape(sql: str) -> str:
    # text() treats any ":word" as a placeholder and un-escapes "\:"; escape every colon here.
    return sql.replace(":", "\\:")


def parse(
    sql: str, dialect: Dialect, *, split: bool = True, positional: bool = False
) -> list[Statement]:
    """Split ``sql`` on top-level ``;`` into statements and find their placeholders.

    Empty statements (only whitespace and comments) are dropped. A ``CREATE`` statement with a
    ``BEGIN ... END`` body (triggers, MySQL procedures) is kept whole. With ``split=False`` the
    text is one statement whatever it holds (a trailing ``;`` is dropped). With
    ``positional=True`` a ``?`` outside literals and comments is a JDBC-style placeholder too,
    named ``?1``, ``?2``... in order.

    Example::

        >>> [s.sql for s in parse("SELECT ';' AS a; -- done\\nSELECT :x::int", "postgresql")]
        ["SELECT ';' AS a", '-- done\\nSELECT :x::int']
        >>> parse("SELECT :x::int", "postgresql")[0].names
        ['x']
    """
    return _Scanner(sql, dialect, split=split, positional=positional).run()


class _Scanner:
    def __init__(
        self, sql: str, dialect: Dialect, *, split: bool = True, positional: bool = False
    ) -> None:
        self.sql = sql
        self.dialect = dialect
        self.split = split
        self.positional = positional
        self.statements: list[Statement] = []
        self._reset(0)

    def _reset(self, start: int) -> None:
        self.start = start
        self.has_code = False
        self.first_word: str | None = None
        self.depth = 0
        self.placeholders: list[Placeholder] = []
        self.last_words: list[str] = []
        self.returning = False
        self.questions = 0

    def run(self) -> list[Statement]:
        sql, n = self.sql, len(self.sql)
        i = 0
        while i < n:
            c = sql[i]
            if c in " \t\r\n\f\v":
                i += 1
            elif c == "'":
                i = self._quoted(i, "'", backslash=self._backslash_string(i))
            elif c == '"':
                i = self._quoted(i, '"', backslash=self.dialect == "mysql")
            elif c == "`" and self.dialect != "postgresql":
                i = self._quoted(i, "`", backslash=False)
            elif self._line_comment(i):
                i = self._line_end(i)
            elif sql.startswith("/*", i):
                i = self._block_comment(i)
            elif c == "$" and self.dialect == "postgresql" and self._dollar_start(i):
                i = self._dollar(i)
            elif c == ":":
                i = self._colon(i)
            elif c == "?" and self.positional:
                self._code()
                self.questions += 1
                self.placeholders.append(Placeholder(f"?{self.questions}", i, i + 1))
                self.last_words.clear()
                i += 1
            elif c == ";" and self.depth == 0 and self.split:
                self._end(i)
                i += 1
                self._reset(i)
            elif c.isalnum() or c == "_":
                i = self._word(i)
            else:
                self._code()
                self.last_words.clear()
                i += 1
        self._end(n)
        return self.statements

    # -- lexical pieces ----------------------------------------------------------------------

    def _code(self) -> None:
        self.has_code = True

    def _backslash_string(self, i: int) -> bool:
        if self.dialect == "mysql":
            return True
        if self.dialect == "postgresql" and i > 0 and self.sql[i - 1] in "eE":
            return i < 2 or not (self.sql[i - 2].isalnum() or self.sql[i - 2] == "_")
        return False

    def _quoted(self, i: int, quote: str, *, backslash: bool) -> int:
        self._code()
        self.last_words.clear()
        sql, n = self.sql, len(self.sql)
        j = i + 1
        while j < n:
            c = sql[j]
            if backslash and c == "\\":
                j += 2
                continue
            if c == quote:
                if j + 1 < n and sql[j + 1] == quote:
                    j += 2
                    continue
                return j + 1
            j += 1
        return n  # unterminated: the database will report it

    def _line_comment(self, i: int) -> bool:
        if self.dialect == "mysql" and self.sql[i] == "#":
            return True
        if not self.sql.startswith("--", i):
            return False
        # MySQL needs whitespace (or the end) after "--" for a comment: "1--1" is arithmetic.
        if self.dialect != "mysql":
            return True
        following = self.sql[i + 2 : i + 3]
        return following == "" or following.isspace()

    def _line_end(self, i: int) -> int:
        end = self.sql.find("\n", i)
        return len(self.sql) if end < 0 else end + 1

    def _block_comment(self, i: int) -> int:
        sql, n = self.sql, len(self.sql)
        nested = self.dialect == "postgresql"
        depth = 1
        j = i + 2
        while j < n and depth:
            if nested and sql.startswith("/*", j):
                depth += 1
                j += 2
            elif sql.startswith("*/", j):
                depth -= 1
                j += 2
            else:
                j += 1
        return j

    def _dollar_start(self, i: int) -> bool:
        if i > 0 and (self.sql[i - 1].isalnum() or self.sql[i - 1] in "_$"):
            return False  # part of an identifier such as a$b
        return _DOLLAR_TAG.match(self.sql, i) is not None

    def _dollar(self, i: int) -> int:
        self._code()
        match = _DOLLAR_TAG.match(self.sql, i)
        assert match is not None
        tag = match.group(0)
        end = self.sql.find(tag, match.end())
        return len(self.sql) if end < 0 else end + len(tag)

    def _colon(self, i: int) -> int:
        self._code()
        sql = self.sql
        if sql.startswith("::", i):
            return i + 2  # a PostgreSQL cast
        previous = sql[i - 1] if i > 0 else ""
        match = _NAME.match(sql, i + 1)
        if match is None or previous.isalnum() or previous in "_\\":
            return i + 1  # a literal colon (MySQL ":=", "a:b", array slices)
        name = match.group(0)
        start, end = i, match.end()
        in_list = bool(self.last_words) and self.last_words[-1] == "IN"
        parenthesised = False
        if not in_list:
            # "IN (:name)": look back over "(" and whitespace, and ahead for ")".
            before = sql[self.start : i].rstrip()
            after = _SPACE.match(sql, end)
            close = after.end() if after else end
            if (
                before.endswith("(")
                and re.search(r"\bIN\s*\($", before, re.IGNORECASE)
                and sql.startswith(")", close)
            ):
                in_list = parenthesised = True
                start = self.start + len(before) - 1
                end = close + 1
        self.placeholders.append(Placeholder(name, start, end, in_list, parenthesised))
        self.last_words.clear()
        return end

    def _word(self, i: int) -> int:
        self._code()
        match = _WORD.match(self.sql, i)
        assert match is not None
        word = match.group(0).upper()
        if self.first_word is None:
            self.first_word = word
        if word == "RETURNING":
            self.returning = True
        if self.first_word == "CREATE":
            if word in ("BEGIN", "CASE"):
                self.depth += 1
            elif word == "END":
                gap = _SPACE.match(self.sql, match.end())
                following = _WORD.match(self.sql, gap.end() if gap else match.end())
                if following is None or following.group(0).upper() not in _END_OF_OTHER:
                    self.depth = max(0, self.depth - 1)
        self.last_words = [word]
        return match.end()

    def _end(self, stop: int) -> None:
        if not self.has_code:
            return
        raw = self.sql[self.start : stop]
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        while not self.split and body.endswith(";"):
            body = body[:-1].rstrip()
        shift = self.start + lead
        placeholders = tuple(
            Placeholder(p.name, p.start - shift, p.end - shift, p.in_list, p.parenthesised)
            for p in self.placeholders
        )
        self.statements.append(Statement(body, placeholders, self.first_word or "", self.returning))


def missing_names(statements: Sequence[Statement], values: Mapping[str, Any]) -> list[str]:
    """Placeholder names used by ``statements`` that ``values`` lacks, in order."""
    seen: dict[str, None] = {}
    for statement in statements:
        for name in statement.names:
            if name not in values:
                seen.setdefault(name)
    return list(seen)


def driver_sql(statement: Statement, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """``statement`` in its driver's own placeholder style, and the placeholder name bound at
    each driver position.

    PostgreSQL (asyncpg) numbers placeholders (``$1``; a name used twice keeps its number);
    MySQL (aiomysql) uses ``%s`` (literal ``%`` doubled); SQLite uses ``?``.

    Example::

        >>> driver_sql(parse("INSERT INTO t VALUES (:a, :b, :a)", "postgresql")[0], "postgresql")
        ('INSERT INTO t VALUES ($1, $2, $1)', ('a', 'b'))
        >>> driver_sql(parse("INSERT INTO t VALUES (:a, '5%', :a)", "mysql")[0], "mysql")
        ("INSERT INTO t VALUES (%s, '5%%', %s)", ('a', 'a'))
    """
    parts: list[str] = []
    numbers: dict[str, int] = {}
    order: list[str] = []
    position = 0

    def literal(text: str) -> str:
        return text.replace("%", "%%") if dialect == "mysql" else text

    for placeholder in statement.placeholders:
        parts.append(literal(statement.sql[position : placeholder.start]))
        if dialect == "postgresql":
            number = numbers.setdefault(placeholder.name, len(numbers) + 1)
            marker = f"${number}"
        else:
            order.append(placeholder.name)
            marker = "%s" if dialect == "mysql" else "?"
        parts.append(f"({marker})" if placeholder.parenthesised else marker)
        position = placeholder.end
    parts.append(literal(statement.sql[position:]))
    names = tuple(numbers) if dialect == "postgresql" else tuple(order)
    return "".join(parts), names
