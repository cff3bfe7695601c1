"""Key rotation for the sealed values of executions and task runs.

The secret store re-seals its own rows; executions hold sealed values too (SECRET inputs,
``{"$sealed": ..., "$key": ...}`` bound to the execution and input name, and values derived
from a secret, ``{"$secret": ..., "$key": ...}``: outputs, ForEach values, variables...). A key
cannot leave the key file while one of them still needs it, and ``plait secrets reseal`` moves
them to the primary key.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Table, and_, select, update

from plait.secrets import KeyRing, Sealed
from plait.storage import SqlRepository, executions, task_runs
from plait.templating import SECRET, SECRET_KEY

#: SECRET inputs (plait.engine._runner), sealed for one execution and input name.
_INPUT = "$sealed"
_VALUE_SCOPE = ("plait.values", "value")  # plait.engine._sealing
#: Only documents holding a sealed value are read (``"$key"`` appears in no other JSON key).
_HAS_KEY = '%"$key"%'


def _boxes(value: Any) -> list[str]:
    """Key ids of every sealed value inside a document."""
    if isinstance(value, dict):
        if len(value) == 2 and SECRET_KEY in value and (SECRET in value or _INPUT in value):
            return [str(value[SECRET_KEY])]
        return [k for item in value.values() for k in _boxes(item)]
    if isinstance(value, list):
        return [k for item in value for k in _boxes(item)]
    return []


def _reseal(ring: KeyRing, value: Any, scope: tuple[str, str]) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and SECRET_KEY in value and (SECRET in value or _INPUT in value):
            field = SECRET if SECRET in value else _INPUT
            if value[SECRET_KEY] == ring.primary_id:
                return value
            if field == SECRET:
                scope = _VALUE_SCOPE
            box = Sealed(value[SECRET_KEY], base64.b64decode(value[field]))
            fresh = ring.seal(*scope, ring.open(*scope, box), limit=None)
            return {field: base64.b64encode(fresh.blob).decode("ascii"), SECRET_KEY: fresh.key_id}
        return {k: _reseal(ring, v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_reseal(ring, v, scope) for v in value]
    return value


def _reseal_document(ring: KeyRing, table: Table, row_id: str, document: dict[str, Any]) -> Any:
    if table is executions and isinstance(document.get("inputs"), dict):
        inputs = document["inputs"]
        document = dict(document)
        document["inputs"] = {
            name: _reseal(ring, value, (f"execution.{row_id}", name))
            for name, value in inputs.items()
        }
    return _reseal(ring, document, _VALUE_SCOPE)


async def _documents(
    repo: SqlRepository, table: Table, after: str, batch: int
) -> list[tuple[str, str]]:
    def run(conn: Connection) -> list[tuple[str, str]]:
        rows = conn.execute(
            select(table.c.id, table.c.document)
            .where(and_(table.c.id > after, table.c.document.like(_HAS_KEY)))
            .order_by(table.c.id)
            .limit(batch)
        ).all()
        conn.commit()
        return [(str(r[0]), str(r[1])) for r in rows]

    return await repo.call(run)


async def stored_keys_in_use(repo: SqlRepository, batch: int = 500) -> dict[str, int]:
    """Key id -> number of sealed values in executions and task runs."""
    counts: Counter[str] = Counter()
    for table in (executions, task_runs):
        after = ""
        while rows := await _documents(repo, table, after, batch):
            for _row_id, document in rows:
                counts.update(_boxes(json.loads(document)))
            after = rows[-1][0]
    return dict(counts)


async def reseal_stored(repo: SqlRepository, ring: KeyRing, batch: int = 100) -> int:
    """Re-seal under the primary key every sealed value of executions and task runs that is
    not; returns how many documents changed.

    Online: a document is swapped only if it still holds what was read, so the save of a
    running execution wins (``remove-key`` counts what is left; run ``reseal`` again).
    """
    changed = 0
    for table in (executions, task_runs):
        after = ""
        while rows := await _documents(repo, table, after, batch):
            updates: list[tuple[str, str, str]] = []
            for row_id, text in rows:
                document = json.loads(text)
                if all(k == ring.primary_id for k in _boxes(document)):
                    continue
                fresh = _reseal_document(ring, table, row_id, document)
                updates.append((row_id, text, json.dumps(fresh, separators=(",", ":"))))
            after = rows[-1][0]

            def swap(
                conn: Connection,
                table: Table = table,
                updates: list[tuple[str, str, str]] = updates,
            ) -> int:
                count = 0
                for row_id, old, new in updates:
                    result = conn.execute(
                        update(table)
                        .where(and_(table.c.id == row_id, table.c.document == old))
                        .values(document=new)
                    )
                    count += result.rowcount
                conn.commit()
                return count

            if updates:
                changed += await repo.call(swap)
    return changed
