"""Connection URLs: Kestra's JDBC forms and SQLAlchemy URLs, mapped to async drivers.

Every URL is rebuilt with :meth:`sqlalchemy.URL.create` from its parts, so a password is never
glued into a string, and errors name the ``url`` property without echoing credentials.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait_sdk import UserError
from sqlalchemy import URL
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from plait_db._sql import Dialect

#: The async driver used for each database.
DRIVERS: dict[Dialect, str] = {
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}
_SCHEMES: dict[str, Dialect] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pgsql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
_DEFAULT_PORTS: dict[Dialect, int] = {"postgresql": 5432, "mysql": 3306}
#: Seconds to wait for a new connection before failing.
CONNECT_TIMEOUT = 30
_SUPPORTED = "jdbc:postgresql://, jdbc:mysql://, jdbc:mariadb://, jdbc:sqlite:, or a SQLAlchemy URL"
_PG_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


@dataclass(frozen=True)
class Target:
    """Where to connect: the async SQLAlchemy URL and the driver's connect arguments."""

    dialect: Dialect
    url: URL
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    """JDBC URL parameters that have no equivalent here and were left out."""

    @property
    def display(self) -> str:
        """The URL with the password hidden, for messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def password(self) -> str | None:
        return self.url.password if isinstance(self.url.password, str) else None

    @property
    def key(self) -> str:
        """Identity of the target (credentials included) for the engine cache; never shown."""
        args = sorted((k, repr(v)) for k, v in self.connect_args.items())
        return f"{self.url.render_as_string(hide_password=False)}|{args!r}"

    @property
    def is_memory(self) -> bool:
        """An in-memory SQLite database (private to one connection)."""
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    def with_database(self, database: str) -> Target:
        return Target(
            self.dialect, self.url.set(database=database), self.connect_args, self.ignored
        )


def resolve(url: str, username: str | None = None, password: str | None = None) -> Target:
    """The connection target of ``url``, with ``username``/``password`` taking precedence.

    Example::

        >>> resolve("jdbc:postgresql://db:5432/shop", "app", "pw").display
        'postgresql+asyncpg://app:***@db:5432/shop'
        >>> resolve("jdbc:sqlite::memory:").display
        'sqlite+aiosqlite://'
    """
    text = url.strip()
    if not text:
        raise UserError(f"is empty; expected {_SUPPORTED}", field="url")
    if text.lower().startswith("jdbc:"):
        return _jdbc(text[5:], username, password)
    return _sqlalchemy(text, username, password)


def _scheme_of(text: str) -> str:
    return text.split(":", 1)[0].lower()


def _unsupported(scheme: str) -> UserError:
    return UserError(f"unsupported database '{scheme}'; expected {_SUPPORTED}", field="url")


def _jdbc(rest: str, username: str | None, password: str | None) -> Target:
    scheme = _scheme_of(rest)
    dialect = _SCHEMES.get(scheme)
    if dialect is None or scheme in ("postgres", "pgsql"):
        raise _unsupported(f"jdbc:{scheme}")
    if dialect == "sqlite":
        return _sqlite(rest[len(scheme) + 1 :])
    after = rest[len(scheme) + 1 :]
    if not after.startswith("//"):
        # jdbc:postgresql:database (local server, default port)
        name, _, query = after.partition("?")
        after = f"//localhost/{name}" + (f"?{query}" if query else "")
    split = urllib.parse.urlsplit(f"{scheme}:{after}")
    if "," in split.netloc:
        raise UserError("several hosts in one URL are not supported", field="url")
    try:
        port = split.port
        host = split.hostname
    except ValueError:
        raise UserError("invalid host or port", field="url") from None
    params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
    user = username or params.pop("user", None) or _unquote(split.username)
    secret: str | None = password if password is not None else params.pop("password", None)
    if secret is None:
        secret = _unquote(split.password)
    params.pop("user", None)
    params.pop("password", None)
    database: str | None = urllib.parse.unquote(split.path.lstrip("/")) or None
    connect_args, ignored = _jdbc_params(dialect, params)
    target_url = URL.create(
        DRIVERS[dialect],
        username=user or None,
        password=secret or None,
        host=host or "localhost",
        port=port or _DEFAULT_PORTS[dialect],
        database=database,
    )
    return Target(dialect, target_url, _with_timeout(dialect, connect_args), tuple(ignored))


def _unquote(value: str | None) -> str | None:
    return urllib.parse.unquote(value) if value else None


def _jdbc_params(dialect: Dialect, params: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Translate the JDBC URL parameters that have a driver equivalent; list the others."""
    args: dict[str, Any] = {}
    ignored: list[str] = []
    settings: dict[str, str] = {}
    for name, value in params.items():
        key = name.lower()
        if dialect == "postgresql" and key == "sslmode" and value in _PG_SSLMODES:
            args["ssl"] = value
        elif dialect == "postgresql" and key == "ssl":
            args["ssl"] = "require" if value.lower() in ("true", "1", "") else "disable"
        elif dialect == "postgresql" and key == "applicationname":
            settings["application_name"] = value
        elif dialect == "postgresql" and key == "currentschema":
            settings["search_path"] = value
        elif dialect == "mysql" and key in ("characterencoding", "charset"):
            charset = value.lower().replace("-", "")
            args["charset"] = "utf8mb4" if charset in ("utf8", "utf8mb4") else charset
        else:
            ignored.append(name)
    if settings:
        args["server_settings"] = settings
    return args, ignored


def _with_timeout(dialect: Dialect, args: dict[str, Any]) -> dict[str, Any]:
    if dialect == "postgresql":
        args.setdefault("timeout", CONNECT_TIMEOUT)
    elif dialect == "mysql":
        args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return args


def _sqlite(path: str) -> Target:
    path = path.strip()
    if path in ("", ":memory:"):
        return Target("sqlite", URL.create(DRIVERS["sqlite"]))
    if path.startswith("file:"):
        return Target("sqlite", URL.create(DRIVERS["sqlite"], database=path, query={"uri": "true"}))
    return Target("sqlite", URL.create(DRIVERS["sqlite"], database=_absolute(path)))


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _sqlalchemy(text: str, username: str | None, password: str | None) -> Target:
    scheme = _scheme_of(text)
    try:
        parsed = make_url(text)
    except ArgumentError:
        if "://" not in text:
            raise UserError(f"not a database URL (expected {_SUPPORTED})", field="url") from None
        raise UserError("could not parse the URL", field="url") from None
    except ValueError:
        raise UserError("invalid host or port", field="url") from None
    base = parsed.get_backend_name()
    dialect = _SCHEMES.get(base)
    if dialect is None:
        raise _unsupported(scheme.split("+")[0])
    if dialect == "sqlite":
        database = parsed.database
        if database is None or database in ("", ":memory:"):
            return _sqlite("")
        if parsed.query.get("uri") == "true" or database.startswith("file:"):
            return Target("sqlite", parsed.set(drivername=DRIVERS["sqlite"]))
        return Target(
            "sqlite", parsed.set(drivername=DRIVERS["sqlite"], database=_absolute(database))
        )
    query = dict(parsed.query)
    args: dict[str, Any] = {}
    if dialect == "postgresql" and "sslmode" in query:
        mode = query.pop("sslmode")
        args["ssl"] = mode if isinstance(mode, str) else mode[-1]
    target_url = parsed.set(
        drivername=DRIVERS[dialect],
        username=username or parsed.username,
        password=password if password is not None else parsed.password,
        query=query,
    )
    return Target(dialect, target_url, _with_timeout(dialect, args))
