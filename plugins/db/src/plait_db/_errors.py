"""Driver and SQLAlchemy errors turned into one clean line, with credentials scrubbed."""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from plait_db._urls import Target

SCRUBBED = "******"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and its URL-encoded forms) replaced by ``******``."""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, SCRUBBED)
    return text


def _driver_error(error: BaseException) -> BaseException:
    """The innermost driver exception behind a SQLAlchemy error."""
    orig = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    # The asyncpg adapter wraps asyncpg's exception (which has sqlstate, detail, hint).
    cause = orig.__cause__
    if cause is not None and hasattr(cause, "sqlstate"):
        return cause
    return orig


def _is_driver_error(error: BaseException) -> bool:
    """An exception raised by a driver directly (asyncpg, PyMySQL, sqlite3), not wrapped."""
    module = type(error).__module__.split(".")[0]
    return module in ("asyncpg", "pymysql", "aiomysql", "sqlite3", "aiosqlite")


def _message(error: BaseException) -> str:
    args = error.args
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):  # PyMySQL
        return f"{args[1]} [error {args[0]}]"
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and type(error).__module__.startswith("asyncpg"):
        text = str(args[0]) if args else str(error)
        text = text.splitlines()[0] if text else type(error).__name__
        for label in ("detail", "hint"):
            extra = getattr(error, label, None)
            if extra:
                text += f" ({label.upper()}: {extra})"
        return f"{text} [SQLSTATE {sqlstate}]"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connection_problem(error: BaseException, target: Target) -> str | None:
    """A message for a failure to reach the server, or None if ``error`` is something else."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 6:
        chain.append(current)
        current = current.__cause__ or (
            current.orig if isinstance(current, StatementError) else None
        )
    where = f"{target.url.host}:{target.url.port}" if target.url.host else target.display
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return f"connection refused by {where} (is the database server running there?)"
        if isinstance(item, socket.gaierror):
            return f"unknown host '{target.url.host}'"
        if isinstance(item, TimeoutError):
            return f"timed out connecting to {where}"
        if isinstance(item, OSError) and not isinstance(item, DBAPIError):
            return f"cannot reach {where}: {item.strerror or item}"
    return None


def describe(error: BaseException, target: Target, *, connecting: bool = False) -> str:
    """One line describing ``error``, never containing the target's password."""
    problem = connection_problem(error, target)
    if problem is None:
        if isinstance(error, SQLAlchemyError | OSError) or _is_driver_error(error):
            problem = _message(_driver_error(error))
        else:
            problem = f"{type(error).__name__}: {error}"
    if connecting:
        problem = f"cannot connect to {target.display}: {problem}"
    return scrub(problem, [target.password])
