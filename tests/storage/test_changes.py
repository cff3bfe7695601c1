"""The change counter (migration 0090): every change another process commits to the API tokens,
the flows or a trigger's ``disabled`` moves ``SqlRepository.changes()`` at once, and the saves
of executions do not (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from backends import Backend
from plait.flows import State
from plait.records import Execution
from plait.storage import ChangeCache, SqlRepository


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


NOW = "2026-12-03 10:00:00"
CHANGES = [
    (
        "a token created",
        "INSERT INTO api_tokens (id, name, role, namespace, token_hash, created, revoked) "
        f"VALUES ('t1', 'ci', 'admin', NULL, 'h1', '{NOW}', NULL)",
    ),
    ("a token revoked", f"UPDATE api_tokens SET revoked = '{NOW}' WHERE id = 't1'"),
    ("a token deleted", "DELETE FROM api_tokens WHERE id = 't1'"),
    (
        "a flow deployed",
        "INSERT INTO flows (namespace, flow_id, revision, source, created, deleted) "
        f"VALUES ('ns', 'f', 1, 'id: f', '{NOW}', false)",
    ),
    ("a flow changed in place", "UPDATE flows SET source = 'id: g' WHERE flow_id = 'f'"),
    ("a flow removed", "DELETE FROM flows WHERE flow_id = 'f'"),
    (
        "a trigger state created",
        "INSERT INTO trigger_states (namespace, flow_id, trigger_id, type, disabled) "
        "VALUES ('ns', 'f', 'hook', 'plait.core.Webhook', false)",
    ),
    ("a trigger disabled", "UPDATE trigger_states SET disabled = true WHERE trigger_id = 'hook'"),
    ("a trigger enabled", "UPDATE trigger_states SET disabled = false WHERE trigger_id = 'hook'"),
]


async def test_another_process_change_moves_the_counter(
    repo: SqlRepository, backend: Backend
) -> None:
    for what, sql in CHANGES:
        before = await repo.changes()
        assert await repo.changes() == before, f"{what}: moved with nothing changed"
        backend.execute(sql)  # another connection: another process, as far as the repo knows
        assert await repo.changes() > before, f"{what}: the counter did not move"


async def test_this_process_changes_move_it_and_execution_saves_do_not(
    repo: SqlRepository,
) -> None:
    before = await repo.changes()
    execution = Execution(namespace="ns", flow_id="f", flow_revision=1)
    execution.transition(State.CREATED)
    await repo.save(execution)
    assert await repo.changes() == before
    await repo.save_flow("ns", "f", "id: f\nnamespace: ns\n")
    after = await repo.changes()
    assert after > before
    await repo.delete_flow("ns", "f")
    assert await repo.changes() > after


async def test_trigger_state_rows_other_than_disabled_leave_it(
    repo: SqlRepository, backend: Backend
) -> None:
    backend.execute(
        "INSERT INTO trigger_states (namespace, flow_id, trigger_id, type, disabled) "
        "VALUES ('ns', 'f', 'tick', 'plait.core.Schedule', false)"
    )
    before = await repo.changes()
    backend.execute(f"UPDATE trigger_states SET next_date = '{NOW}' WHERE trigger_id = 'tick'")
    assert await repo.changes() == before


def test_change_cache_keeps_values_while_the_version_stands() -> None:
    cache: ChangeCache[str, int] = ChangeCache(limit=2)
    assert cache.get(1, "a") is None
    cache.put(1, "a", 10)
    assert cache.get(1, "a") == 10
    assert cache.get(2, "a") is None  # moved: everything read before is gone
    cache.put(1, "b", 20)  # read at the old version: not kept
    assert cache.get(2, "b") is None
    cache.put(2, "b", 20)
    cache.put(2, "c", 30)
    cache.put(2, "d", 40)  # over the limit: started again
    assert cache.get(2, "b") is None
    assert cache.get(2, "d") == 40
    assert cache.get(1, "d") is None  # an older version never wipes a newer one
    assert cache.get(2, "d") == 40
