"""URL forms: Kestra's JDBC URLs and SQLAlchemy URLs, mapped to async drivers."""

from __future__ import annotations

from pathlib import Path

import pytest
from plait_db._urls import resolve
from plait_sdk import UserError


@pytest.mark.parametrize(
    ("url", "display"),
    [
        ("jdbc:postgresql://db.example:5433/shop", "postgresql+asyncpg://db.example:5433/shop"),
        ("jdbc:postgresql://127.0.0.1:56982/", "postgresql+asyncpg://127.0.0.1:56982"),
        ("jdbc:postgresql://db/shop", "postgresql+asyncpg://db:5432/shop"),
        ("jdbc:postgresql:shop", "postgresql+asyncpg://localhost:5432/shop"),
        ("jdbc:mysql://db:3307/shop", "mysql+aiomysql://db:3307/shop"),
        ("jdbc:mariadb://db/shop", "mysql+aiomysql://db:3306/shop"),
        ("jdbc:mysql://[::1]:3306/shop", "mysql+aiomysql://[::1]:3306/shop"),
        ("postgresql://db/shop", "postgresql+asyncpg://db/shop"),
        ("postgres://db/shop", "postgresql+asyncpg://db/shop"),
        ("postgresql+psycopg2://db/shop", "postgresql+asyncpg://db/shop"),
        ("mysql+pymysql://db/shop", "mysql+aiomysql://db/shop"),
        ("mariadb://db/shop", "mysql+aiomysql://db/shop"),
        ("jdbc:sqlite::memory:", "sqlite+aiosqlite://"),
        ("jdbc:sqlite:", "sqlite+aiosqlite://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
)
def test_url_forms(url: str, display: str) -> None:
    assert resolve(url).display == display


def test_sqlite_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    expected = str(tmp_path / "my.db")
    assert resolve("jdbc:sqlite:my.db").url.database == expected
    assert resolve(f"jdbc:sqlite:{expected}").url.database == expected
    assert resolve("sqlite:///my.db").url.database == expected
    assert resolve("jdbc:sqlite:my.db").is_memory is False
    assert resolve("jdbc:sqlite::memory:").is_memory is True


def test_credentials_from_properties_win_over_the_url() -> None:
    target = resolve("jdbc:mysql://u:p%40ss@db/shop?user=q&password=z", "admin", "s3cr:t/pw")
    assert (target.url.username, target.url.password) == ("admin", "s3cr:t/pw")
    assert "s3cr" not in target.display
    from_query = resolve("jdbc:postgresql://db/shop?user=app&password=from-query")
    assert (from_query.url.username, from_query.password) == ("app", "from-query")
    from_userinfo = resolve("jdbc:mysql://u:p%40ss@db/shop")
    assert (from_userinfo.url.username, from_userinfo.password) == ("u", "p@ss")
    from_sqlalchemy = resolve("postgresql://u:pw@db/shop", None, "override")
    assert from_sqlalchemy.password == "override"


def test_jdbc_parameters_are_translated_or_reported() -> None:
    pg = resolve(
        "jdbc:postgresql://db/shop?sslmode=require&ApplicationName=plait"
        "&currentSchema=sales&loginTimeout=3"
    )
    assert pg.connect_args["ssl"] == "require"
    assert pg.connect_args["server_settings"] == {
        "application_name": "plait",
        "search_path": "sales",
    }
    assert pg.ignored == ("loginTimeout",)
    my = resolve("jdbc:mysql://db/shop?useSSL=false&characterEncoding=UTF-8")
    assert my.connect_args["charset"] == "utf8mb4"
    assert my.ignored == ("useSSL",)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "url: is empty"),
        ("jdbc:oracle:thin:@db:1521:orcl", "url: unsupported database 'jdbc:oracle'"),
        ("mongodb://db/x", "url: unsupported database 'mongodb'"),
        ("just text", "url: not a database URL"),
        ("jdbc:postgresql://db:99999/x", "url: invalid host or port"),
        ("jdbc:postgresql://a,b/x", "url: several hosts in one URL are not supported"),
    ],
)
def test_bad_urls_are_user_errors_naming_the_property(url: str, reason: str) -> None:
    with pytest.raises(UserError) as caught:
        resolve(url)
    assert str(caught.value).startswith(reason)
    assert caught.value.field == "url"


def test_bad_url_errors_never_echo_the_password() -> None:
    with pytest.raises(UserError) as caught:
        resolve("jdbc:oracle:thin:scott/T0pS3cret@db:1521:orcl")
    assert "T0pS3cret" not in str(caught.value)
    with pytest.raises(UserError) as caught:
        resolve("jdbc:postgresql://user:T0pS3cret@db:notaport/x")
    assert "T0pS3cret" not in str(caught.value)
