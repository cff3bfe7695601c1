"""The typed key-value store, its tasks and kv() in templates, over a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.kv import KVStore
from plait.plugins import PluginHost
from plait.storage import SqlRepository
from plait_sdk import UserError


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()
    yield repo
    await repo.close()


async def test_values_keep_their_types(repo: SqlRepository) -> None:
    store = KVStore(repo)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cases = {
        "s": ("text", None, "text"),
        "n": (42, None, 42),
        "f": (1.5, None, 1.5),
        "b": (True, None, True),
        "dt": (when, None, when),
        "d": (date(2026, 1, 2), None, date(2026, 1, 2)),
        "dur": ("PT1H30M", "DURATION", timedelta(hours=1, minutes=30)),
        "j": ({"a": [1, 2]}, None, {"a": [1, 2]}),
        "jtext": ('{"x": 1}', "JSON", {"x": 1}),
        "ntext": ("7", "NUMBER", 7.0),
        "btext": ("false", "BOOLEAN", False),
    }
    for key, (value, kind, _) in cases.items():
        await store.set("ns", key, value, type=kind)
    for key, (_, _, expected) in cases.items():
        assert await store.get("ns", key) == expected, key
    with pytest.raises(UserError, match="not a valid NUMBER"):
        await store.set("ns", "bad", "abc", type="NUMBER")
    with pytest.raises(UserError, match="invalid KV key"):
        await store.set("ns", "bad key", 1)


async def test_ttl_overwrite_delete_and_keys(repo: SqlRepository) -> None:
    store = KVStore(repo)
    await store.set("ns", "short", 1, ttl=timedelta(milliseconds=50))
    await store.set("ns", "user_a", 1)
    await store.set("ns", "user_b", 2)
    await store.set("other", "user_c", 3)
    assert [k for k, _, _ in await store.keys("ns", "user_")] == ["user_a", "user_b"]
    await asyncio.sleep(0.1)
    assert await store.get("ns", "short") is None
    assert "short" not in [k for k, _, _ in await store.keys("ns")]
    with pytest.raises(UserError, match="overwrite is false"):
        await store.set("ns", "user_a", 9, overwrite=False)
    await store.set("ns", "short", 5, overwrite=False)  # expired keys may be replaced
    assert await store.delete("ns", "user_a") is True
    assert await store.delete("ns", "user_a") is False


async def test_kv_tasks_and_template_function(repo: SqlRepository, tmp_path: Path) -> None:
    runner = Runner(
        repo,
        PluginHost.discover(entry_points=False),
        LocalStorageBackend(tmp_path / "s"),
        kv=KVStore(repo),
    )
    flow, revision = await runner.deploy(
        """
id: kv
namespace: team
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: cursor
    value: "{{ 40 + 2 }}"
    kvType: NUMBER
  - id: shared
    type: plait.core.kv.Set
    key: region
    value: eu
    namespace: company
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: cursor
  - id: use
    type: plait.core.Return
    format: >-
      {{ kv('cursor') + 1 }} {{ kv('region', namespace='company') }}
      {{ kv('nope', errorOnMissing=false) }}
  - id: keys
    type: plait.core.kv.GetKeys
  - id: del
    type: plait.core.kv.Delete
    key: cursor
  - id: missing
    type: plait.core.kv.Get
    key: cursor
    errorOnMissing: true
    allowFailure: true
"""
    )
    execution = await runner.run(flow, revision, {})
    outputs = {r.task_id: r for r in execution.task_runs}
    assert execution.state is State.WARNING, execution.error
    assert outputs["get"].outputs == {"value": 42}
    assert outputs["use"].outputs == {"value": "43 eu "}  # null renders empty, as in Kestra
    assert outputs["keys"].outputs == {"keys": ["cursor"]}
    assert outputs["del"].outputs == {"deleted": True}
    assert "no KV key 'cursor'" in (outputs["missing"].error or "")
    failing, revision = await runner.deploy(
        "id: kv2\nnamespace: team\ntasks:\n  - id: r\n    type: plait.core.Return\n"
        "    format: \"{{ kv('absent') }}\"\n"
    )
    execution = await runner.run(failing, revision, {})
    assert execution.state is State.FAILED
    assert "kv('absent'): no such key" in (execution.task_runs[0].error or "")
