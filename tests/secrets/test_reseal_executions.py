"""Key rotation re-seals the sealed values of executions and task runs (SQLite and PostgreSQL):
the SECRET inputs bound to their execution and the values derived from a secret."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from backends import Backend
from plait.engine._reseal import reseal_stored, stored_keys_in_use
from plait.engine._sealing import reveal, seal_text
from plait.records import Execution, TaskRun
from plait.secrets import KeyRing, MasterKey, Sealed
from plait.storage import SqlRepository


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


async def test_reseal_moves_inputs_and_derived_values_to_the_primary_key(
    repo: SqlRepository,
) -> None:
    old_key, new_key = MasterKey.generate(), MasterKey.generate()
    old = KeyRing([old_key])
    execution = Execution(namespace="t", flow_id="f", flow_revision=1)
    box = old.seal(f"execution.{execution.id}", "pw", b"hunter2-pw", limit=None)
    execution.inputs = {"pw": {"$sealed": base64.b64encode(box.blob).decode(), "$key": box.key_id}}
    execution.variables = {"auth": seal_text(old, "Bearer tok-1")}
    run = TaskRun(execution_id=execution.id, task_id="each")
    run.value = seal_text(old, "tok-1-value")
    run.scratch = {"values": [seal_text(old, "tok-1-value"), "plain"]}
    await repo.save(execution, [run])
    assert await stored_keys_in_use(repo) == {old_key.id: 4}

    ring = KeyRing([new_key, old_key], new_key.id)
    assert await reseal_stored(repo, ring) == 2  # the execution's document and the run's
    assert await stored_keys_in_use(repo) == {new_key.id: 4}
    assert await reseal_stored(repo, ring) == 0

    only_new = KeyRing([new_key])
    stored = await repo.get_execution(execution.id)
    assert stored is not None
    sealed = stored.inputs["pw"]
    opened = only_new.open(
        f"execution.{execution.id}",
        "pw",
        Sealed(sealed["$key"], base64.b64decode(sealed["$sealed"])),
    )
    assert opened == b"hunter2-pw"
    assert reveal(only_new, stored.variables) == {"auth": "Bearer tok-1"}
    (stored_run,) = stored.task_runs
    assert reveal(only_new, stored_run.value) == "tok-1-value"
    assert reveal(only_new, stored_run.scratch) == {"values": ["tok-1-value", "plain"]}
