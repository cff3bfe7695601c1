"""Namespace files in the database (SQLite and PostgreSQL): versions, folders, and refusals of
paths that are user input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from backends import Backend
from plait.limits import override_limits
from plait.nsfiles import NamespaceFileStore, ScopedNamespaceFiles, check_path, matcher
from plait.storage import SqlRepository
from plait_sdk import UserError


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[NamespaceFileStore]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield NamespaceFileStore(repo)
    await repo.close()


async def test_a_write_adds_a_version_and_a_read_gets_the_latest(
    store: NamespaceFileStore,
) -> None:
    assert await store.put("company.team", "/scripts/etl.py", b"v1") == 1
    assert await store.put("company.team", "scripts/etl.py", b"version two") == 2
    assert await store.get("company.team", "scripts/etl.py") == b"version two"
    assert await store.get("company.team", "scripts/etl.py", version=1) == b"v1"
    [stat] = await store.list("company.team")
    assert (stat.path, stat.size, stat.version) == ("scripts/etl.py", 11, 2)
    assert stat.created <= stat.updated


async def test_namespaces_are_separate(store: NamespaceFileStore) -> None:
    await store.put("a", "x.txt", b"a")
    await store.put("b", "x.txt", b"b")
    assert await store.get("a", "x.txt") == b"a"
    assert await store.get("c", "x.txt") is None


async def test_a_folder_lists_and_deletes_what_is_under_it_only(
    store: NamespaceFileStore,
) -> None:
    for path in ("sql/a.sql", "sql/deep/b.sql", "sqlx/c.sql", "top.txt"):
        await store.put("ns", path, b"-")
    assert [f.path for f in await store.list("ns", "/sql/")] == ["sql/a.sql", "sql/deep/b.sql"]
    assert await store.delete("ns", "sql") == ["sql/a.sql", "sql/deep/b.sql"]
    assert [f.path for f in await store.list("ns")] == ["sqlx/c.sql", "top.txt"]
    assert await store.delete("ns", "missing.txt") == []


async def test_a_like_wildcard_in_a_folder_name_matches_only_itself(
    store: NamespaceFileStore,
) -> None:
    await store.put("ns", "a_b/x", b"-")
    await store.put("ns", "aXb/y", b"-")
    assert [f.path for f in await store.list("ns", "a_b")] == ["a_b/x"]


async def test_a_path_cannot_be_a_file_and_a_folder(store: NamespaceFileStore) -> None:
    await store.put("ns", "data/x.csv", b"-")
    with pytest.raises(UserError, match=r"clashes with 'data/x\.csv'"):
        await store.put("ns", "data", b"-")
    with pytest.raises(UserError, match=r"clashes with 'data/x\.csv'"):
        await store.put("ns", "data/x.csv/inner", b"-")


async def test_the_size_limit_is_enforced_with_its_variable_named(
    store: NamespaceFileStore,
) -> None:
    with override_limits(namespace_file_max_bytes=4):
        assert await store.put("ns", "ok.bin", b"1234") == 1
        with pytest.raises(UserError, match="PLAIT_LIMIT_NAMESPACE_FILE_MAX_BYTES"):
            await store.put("ns", "big.bin", b"12345")
    assert await store.get("ns", "big.bin") is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../etc/passwd", "'..'"),
        ("a/../../b", "'..'"),
        ("a/./b", "'..'"),
        ("a//b", "empty segments"),
        ("//server/share", "absolute"),
        ("C:/Windows/x", "use '/' relative paths"),
        ("a\\b", "use '/' relative paths"),
        ("a\x00b", "control characters"),
        ("a\nb", "control characters"),
        ("", "empty"),
        ("x" * 401, "longer than 400"),
    ],
)
def test_unsafe_paths_are_refused_with_the_reason(path: str, reason: str) -> None:
    with pytest.raises(UserError, match=reason.replace("(", r"\(")):
        check_path(path)


async def test_the_store_refuses_unsafe_paths_and_namespaces(store: NamespaceFileStore) -> None:
    with pytest.raises(UserError, match=r"'\.\.'"):
        await store.put("ns", "../x", b"-")
    with pytest.raises(UserError, match="invalid namespace"):
        await store.put("../ns", "x", b"-")


def test_kestras_patterns_globs_regex_and_paths() -> None:
    keep = matcher(["scripts/**", "glob:**/*.sql", "regex:^conf/[a-z]+\\.ya?ml$", "/top.txt"])
    for path in ("scripts/a.py", "scripts/x/y.py", "a/b/q.sql", "q.sql", "conf/app.yml", "top.txt"):
        assert keep(path), path
    for path in ("script/a.py", "conf/App.yml", "x/top.txt", "a.sqlx"):
        assert not keep(path), path
    assert matcher(["**input.txt"])("deep/input.txt")
    assert not matcher(["*.txt"])("deep/input.txt")


async def test_the_task_view_defaults_to_the_flow_namespace(store: NamespaceFileStore) -> None:
    view = ScopedNamespaceFiles(store, "company.team")
    assert await view.write("a.txt", b"x") == 1
    assert await view.list() == ["a.txt"]
    assert await view.read("a.txt", namespace="company.team") == b"x"
    with pytest.raises(UserError, match="does not exist in namespace other"):
        await view.read("a.txt", namespace="other")
    assert await view.delete("a.txt")
    assert not await view.delete("a.txt")
