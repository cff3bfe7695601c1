"""Errors are one clean line: the database's message, the property at fault, no password."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from plait_db import Queries, Query
from plait_sdk import TaskFailure, UserError
from plait_sdk.testing import HarnessContext

from .conftest import MYSQL_URL, Db, require_service

PASSWORD = "Pa55:w0rd/" + uuid.uuid4().hex[:8]


async def query(ctx: HarnessContext, **properties: Any) -> Any:
    return await Query.model_validate(properties).run(ctx)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UNKNOWN_TABLE = {
    "postgresql": 'relation "{t}" does not exist [SQLSTATE 42P01]',
    "mysql": "Table 'test.{t}' doesn't exist [error 1146]",
    "sqlite": "no such table: {t}",
}


async def test_unknown_table_fails_with_the_database_message(db: Db, ctx: HarnessContext) -> None:
    missing = f"plait_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url=db.url, sql=f"SELECT * FROM {missing}")
    assert str(caught.value) == "query failed: " + UNKNOWN_TABLE[db.dialect].format(t=missing)


async def test_constraint_violation_carries_the_detail(pg: Db, ctx: HarnessContext) -> None:
    table = pg.table("uniq")
    await pg.execute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY)", f"INSERT INTO {table} VALUES (1)"
    )
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url=pg.url, sql=f"INSERT INTO {table} VALUES (1)")
    text = str(caught.value)
    assert "duplicate key value violates unique constraint" in text
    assert "(DETAIL: Key (id)=(1) already exists.)" in text
    assert text.endswith("[SQLSTATE 23505]")


async def test_syntax_error(db: Db, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"query failed: .*syntax") as caught:
        await query(ctx, url=db.url, sql="SELEC 1")
    assert "\n" not in str(caught.value)


async def test_connection_refused(ctx: HarnessContext) -> None:
    port = free_port()
    for url in (
        f"jdbc:postgresql://127.0.0.1:{port}/test",
        f"jdbc:mysql://127.0.0.1:{port}/test",
    ):
        with pytest.raises(TaskFailure) as caught:
            await query(ctx, url=url, username="app", password=PASSWORD, sql="SELECT 1")
        text = str(caught.value)
        assert text.startswith("cannot connect to ")
        assert (
            f"connection refused by 127.0.0.1:{port} (is the database server running there?)"
            in text
        )
        assert "app:***@127.0.0.1" in text
        assert PASSWORD not in text


async def test_unknown_host(ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure, match=r"unknown host 'no-such-host\.invalid'"):
        await query(ctx, url="jdbc:postgresql://no-such-host.invalid:5432/x", sql="SELECT 1")


async def test_unknown_database(pg: Db, ctx: HarnessContext) -> None:
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url=pg.url.rsplit("/", 1)[0] + "/no_such_db_plait", sql="SELECT 1")
    assert str(caught.value).startswith("cannot connect to postgresql+asyncpg://")
    assert 'database "no_such_db_plait" does not exist' in str(caught.value)


@pytest.mark.services
async def test_wrong_password_never_shows_the_password(ctx: HarnessContext) -> None:
    require_service("mysql")
    url = MYSQL_URL.replace("mysql://", "jdbc:mysql://").split("@", 1)
    jdbc = "jdbc:mysql://" + url[1]
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url=jdbc, username="root", password=PASSWORD, sql="SELECT 1")
    text = str(caught.value)
    assert "Access denied for user 'root'" in text
    assert PASSWORD not in text
    assert PASSWORD in ctx.masker.values


async def test_a_password_echoed_by_the_database_is_scrubbed(pg: Db, ctx: HarnessContext) -> None:
    # PostgreSQL (trust auth here) accepts any password; the SQL makes the server echo it.
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url=pg.url, password=PASSWORD, sql=f'SELECT * FROM "{PASSWORD}"')
    text = str(caught.value)
    assert text == 'query failed: relation "******" does not exist [SQLSTATE 42P01]'
    assert ctx.masker.values == {PASSWORD}


async def test_password_in_the_url_is_masked_too(pg: Db, ctx: HarnessContext) -> None:
    url = pg.jdbc + f"&password={PASSWORD.replace('/', '%2F').replace(':', '%3A')}"
    out = await query(ctx, url=url, sql="SELECT 1 AS one", fetchType="FETCH_ONE")
    assert out.row == {"one": 1}
    assert PASSWORD in ctx.masker.values


async def test_sqlite_file_that_cannot_be_opened(ctx: HarnessContext, tmp_path: Path) -> None:
    with pytest.raises(TaskFailure) as caught:
        await query(ctx, url="jdbc:sqlite:/nonexistent-dir/plait/x.db", sql="SELECT 1")
    assert str(caught.value) == (
        "cannot open SQLite database /nonexistent-dir/plait/x.db: "
        "directory /nonexistent-dir/plait does not exist"
    )
    # A directory where the file should be: the driver's own message.
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(TaskFailure, match="unable to open database file"):
        await query(ctx, url=f"jdbc:sqlite:{tmp_path / 'dir.db'}", sql="SELECT 1")


async def test_bad_url_is_a_user_error_naming_the_property(ctx: HarnessContext) -> None:
    with pytest.raises(UserError) as caught:
        await query(ctx, url="jdbc:oracle:thin:@db:1521:orcl", password=PASSWORD, sql="SELECT 1")
    assert caught.value.field == "url"
    assert str(caught.value).startswith("url: unsupported database 'jdbc:oracle'")
    with pytest.raises(UserError, match="url: "):
        await Queries.model_validate({"url": "not a url", "sql": "SELECT 1"}).run(ctx)


async def test_ignored_jdbc_parameters_are_logged(pg: Db, ctx: HarnessContext) -> None:
    await query(ctx, url=pg.jdbc + "&useSSL=false&loginTimeout=5", sql="SELECT 1")
    assert (
        "WARNING",
        "ignoring JDBC URL parameter(s) with no equivalent here: useSSL, loginTimeout",
    ) in ctx.logs
