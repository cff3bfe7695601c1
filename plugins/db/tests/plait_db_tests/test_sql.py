"""The SQL scanner: statement splitting and placeholder detection, without a database."""

from __future__ import annotations

import pytest
from plait_db._sql import missing_names, parse
from sqlalchemy.dialects import mysql, postgresql, sqlite


def sqls(script: str, dialect: str = "postgresql") -> list[str]:
    return [s.sql for s in parse(script, dialect)]  # type: ignore[arg-type]


def names(script: str, dialect: str = "postgresql") -> list[list[str]]:
    return [s.names for s in parse(script, dialect)]  # type: ignore[arg-type]


def test_splits_on_top_level_semicolons_only() -> None:
    script = """
        INSERT INTO t VALUES ('a;b', "c;d");  -- a comment; with a semicolon
        /* block; comment */ UPDATE t SET x = 1;
        ;;
        SELECT 1
    """
    assert sqls(script) == [
        "INSERT INTO t VALUES ('a;b', \"c;d\")",
        "-- a comment; with a semicolon\n        /* block; comment */ UPDATE t SET x = 1",
        "SELECT 1",
    ]


def test_comment_only_pieces_are_dropped() -> None:
    assert sqls("SELECT 1; -- the end\n") == ["SELECT 1"]
    assert sqls("  ;  /* nothing */ ; ") == []


def test_postgres_dollar_quoting_and_nested_comments() -> None:
    script = (
        "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;"
        "SELECT $$a;b$$, a$b$c FROM t; /* outer /* inner; */ still; */ SELECT 2"
    )
    assert sqls(script) == [
        "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql",
        "SELECT $$a;b$$, a$b$c FROM t",
        "/* outer /* inner; */ still; */ SELECT 2",
    ]


def test_escaped_quotes() -> None:
    assert sqls("SELECT 'it''s; fine'; SELECT 2") == ["SELECT 'it''s; fine'", "SELECT 2"]
    assert sqls("SELECT E'a\\';b'; SELECT 2") == ["SELECT E'a\\';b'", "SELECT 2"]
    # Standard PostgreSQL strings: a backslash is a plain character.
    assert sqls("SELECT 'a\\'; SELECT 2") == ["SELECT 'a\\'", "SELECT 2"]
    # MySQL strings: a backslash escapes; backticks and double quotes quote.
    assert sqls("SELECT 'a\\';b', `x;y`, \"p\\\";q\"; SELECT 2", "mysql") == [
        "SELECT 'a\\';b', `x;y`, \"p\\\";q\"",
        "SELECT 2",
    ]


def test_mysql_comments() -> None:
    assert sqls("SELECT 1 # hash; comment\n; SELECT 2--1;", "mysql") == [
        "SELECT 1 # hash; comment",
        "SELECT 2--1",
    ]
    assert sqls("SELECT 1 -- dash; comment\n; SELECT 2", "mysql") == [
        "SELECT 1 -- dash; comment",
        "SELECT 2",
    ]


def test_trigger_and_procedure_bodies_stay_whole() -> None:
    trigger = (
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN "
        "UPDATE u SET n = CASE WHEN NEW.x > 0 THEN 1 ELSE 0 END; INSERT INTO v VALUES (1); END"
    )
    assert sqls(f"{trigger}; SELECT 1", "sqlite") == [trigger, "SELECT 1"]
    procedure = (
        "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; WHILE 0 DO SELECT 2; END WHILE; END"
    )
    assert sqls(f"{procedure}; SELECT 3", "mysql") == [procedure, "SELECT 3"]
    # BEGIN as a statement of its own does not swallow the rest.
    assert sqls("BEGIN; INSERT INTO t VALUES (1); COMMIT", "mysql") == [
        "BEGIN",
        "INSERT INTO t VALUES (1)",
        "COMMIT",
    ]


def test_placeholders_outside_literals_casts_and_comments() -> None:
    script = (
        "SELECT :a::int, 'x:y', \"col:z\", '{\"k\":1}'::jsonb, :b -- :c\n"
        "FROM t WHERE ts > '2024-01-01 10:30:00' AND arr[1:2] = :a /* :d */ AND e = $$:f$$"
    )
    assert names(script) == [["a", "b"]]


def test_mysql_assignment_is_not_a_placeholder() -> None:
    assert names("SELECT @n := :start + 1", "mysql") == [["start"]]


def test_in_list_placeholders() -> None:
    [statement] = parse("SELECT * FROM t WHERE a IN :ids OR b in ( :more ) OR c = :one", "sqlite")
    found = {p.name: (p.in_list, p.parenthesised) for p in statement.placeholders}
    assert found == {"ids": (True, False), "more": (True, True), "one": (False, False)}


def test_keyword() -> None:
    assert [
        s.keyword for s in parse("-- x\n(SELECT 1); with a as (select 1) select 1", "sqlite")
    ] == [
        "SELECT",
        "WITH",
    ]
    [insert] = parse("INSERT INTO t VALUES (1) RETURNING id", "postgresql")
    assert (insert.keyword, insert.returns_rows_surely) == ("INSERT", False)


@pytest.mark.parametrize(
    ("dialect", "sa_dialect", "expected"),
    [
        ("postgresql", postgresql.asyncpg.dialect(), "$"),
        ("mysql", mysql.aiomysql.dialect(), "%s"),
        ("sqlite", sqlite.aiosqlite.dialect(), "?"),
    ],
)
def test_clause_binds_only_our_placeholders(
    dialect: str, sa_dialect: object, expected: str
) -> None:
    [statement] = parse(
        "SELECT ':lit', '100%', x FROM t WHERE a = :a AND b LIKE 'p%' AND c IN :ids",
        dialect,  # type: ignore[arg-type]
    )
    compiled = statement.clause({"a": "v", "ids": [1, 2]}).compile(
        dialect=sa_dialect,  # type: ignore[arg-type]
        compile_kwargs={"render_postcompile": True},
    )
    sql = str(compiled)
    assert "':lit'" in sql
    assert expected in sql
    assert "::VARCHAR" not in sql  # no cast inferred from the value's Python type
    assert sql.count(expected) == 3


def test_unsplit_text_is_one_statement() -> None:
    [statement] = parse("SELECT ';' ; SELECT :x ; ", "mysql", split=False)
    assert statement.sql == "SELECT ';' ; SELECT :x"
    assert statement.names == ["x"]
    assert parse(" -- only a comment\n", "mysql", split=False) == []


def test_missing_names() -> None:
    statements = parse("SELECT :a, :b; SELECT :c, :a", "sqlite")
    assert missing_names(statements, {"a": 1}) == ["b", "c"]
    assert missing_names(statements, {"a": 1, "b": 2, "c": 3, "unused": 4}) == []
