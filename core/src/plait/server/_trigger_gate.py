"""What every trigger goes through before it starts an execution: its ``conditions:`` and, for
the loop's evaluations, a lock in the database.

Conditions are checked with the trigger's date and variables; when they do not hold nothing
starts and the reason is kept as the trigger's ``lastCondition`` (shown in /api/v1/triggers).

The lock (``trigger_states.locked_by`` / ``locked_until``) says "this trigger is being
evaluated by that process": another process (or a second loop by mistake) leaves it alone. An
evaluation that ends releases it; one whose process died on this host is taken over at once
(the process is gone); one of another host leaves it until it expires by itself
(``LOCK_TTL``) or someone unlocks it (``POST /api/v1/triggers/{ns}/{flow}/{trigger}/unlock``,
``plait triggers unlock``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from plait.engine import Runner, owner_is_dead
from plait.flows import Flow, TriggerSpec
from plait.storage import SqlRepository, trigger_states
from plait.triggers import ConditionContext, check

log = logging.getLogger("plait.server.triggers")

#: How long an evaluation's lock lasts when its process dies without releasing it (an
#: evaluation itself is bounded by 60 s; five minutes leaves room for a slow database).
LOCK_TTL = timedelta(minutes=5)


async def conditions_met(
    runner: Runner,
    flow: Flow,
    spec: TriggerSpec,
    date: datetime,
    variables: Mapping[str, Any],
    execution: Mapping[str, Any] | None = None,
) -> str | None:
    """``None`` when the trigger's conditions all hold (or it has none), else why not."""
    if not spec.conditions:
        return None
    ctx = ConditionContext(
        date=date,
        namespace=flow.namespace,
        flow_id=flow.id,
        render=runner.templates.render_value,
        variables=variables,
        execution=execution,
    )
    return await check(spec.conditions, ctx)


def _where(namespace: str, flow_id: str, trigger_id: str) -> Any:
    return and_(
        trigger_states.c.namespace == namespace,
        trigger_states.c.flow_id == flow_id,
        trigger_states.c.trigger_id == trigger_id,
    )


def upsert_state(
    conn: Connection,
    namespace: str,
    flow_id: str,
    trigger_id: str,
    type_name: str,
    values: Mapping[str, Any],
) -> None:
    """Update the trigger's state row with ``values``, creating it if needed (no commit)."""
    where = _where(namespace, flow_id, trigger_id)
    if conn.execute(update(trigger_states).where(where).values(**values)).rowcount == 0:
        conn.execute(
            insert(trigger_states).values(
                namespace=namespace,
                flow_id=flow_id,
                trigger_id=trigger_id,
                type=type_name,
                disabled=False,
                **values,
            )
        )


async def record_condition(
    repo: SqlRepository, flow: Flow, spec: TriggerSpec, now: datetime, reason: str | None
) -> None:
    """Keep the outcome of the conditions (``None``: they held) and the evaluation time."""

    def run(conn: Connection) -> None:
        values = {"last_evaluation": now, "last_condition": reason}
        upsert_state(conn, flow.namespace, flow.id, spec.id, spec.type, values)
        conn.commit()

    await repo.call(run)


def clear_condition(conn: Connection, flow: Flow, spec: TriggerSpec) -> None:
    """The conditions held (in the transaction that starts the execution)."""
    conn.execute(
        update(trigger_states)
        .where(_where(flow.namespace, flow.id, spec.id))
        .values(last_condition=None)
    )


async def acquire(
    repo: SqlRepository,
    flow: Flow,
    spec: TriggerSpec,
    owner: str,
    now: datetime,
    ttl: timedelta = LOCK_TTL,
) -> bool:
    """Take the trigger's lock for an evaluation (free, expired, or already this owner's)."""
    where = _where(flow.namespace, flow.id, spec.id)
    free = or_(
        trigger_states.c.locked_by.is_(None),
        trigger_states.c.locked_until.is_(None),
        trigger_states.c.locked_until < now,
        trigger_states.c.locked_by == owner,
    )

    def run(conn: Connection) -> bool:
        taken = conn.execute(
            update(trigger_states)
            .where(where, free)
            .values(locked_by=owner, locked_until=now + ttl)
        ).rowcount
        if taken == 0:
            exists = conn.execute(select(trigger_states.c.locked_by).where(where)).first()
            if exists is not None and exists.locked_by and owner_is_dead(exists.locked_by):
                # Held by a process of this host that has exited (killed): no need to wait
                # for the lock to expire.
                taken = conn.execute(
                    update(trigger_states)
                    .where(where, trigger_states.c.locked_by == exists.locked_by)
                    .values(locked_by=owner, locked_until=now + ttl)
                ).rowcount
                if taken:
                    log.info(
                        "trigger %s.%s/%s: took the lock of exited process %s",
                        *_key(flow, spec),
                        exists.locked_by,
                    )
            if exists is None:
                conn.execute(
                    insert(trigger_states).values(
                        namespace=flow.namespace,
                        flow_id=flow.id,
                        trigger_id=spec.id,
                        type=spec.type,
                        disabled=False,
                        locked_by=owner,
                        locked_until=now + ttl,
                    )
                )
                taken = 1
        conn.commit()
        return taken == 1

    got = await repo.call(run)
    if not got:
        log.debug("trigger %s.%s/%s is locked by another evaluation", *_key(flow, spec))
    return got


async def release(repo: SqlRepository, flow: Flow, spec: TriggerSpec, owner: str) -> None:
    where = _where(flow.namespace, flow.id, spec.id)

    def run(conn: Connection) -> None:
        conn.execute(
            update(trigger_states)
            .where(where, trigger_states.c.locked_by == owner)
            .values(locked_by=None, locked_until=None)
        )
        conn.commit()

    await repo.call(run)


async def unlock(repo: SqlRepository, namespace: str, flow_id: str, trigger_id: str) -> bool:
    """Free the trigger's lock whoever holds it; whether it was locked."""

    def run(conn: Connection) -> bool:
        changed = conn.execute(
            update(trigger_states)
            .where(_where(namespace, flow_id, trigger_id), trigger_states.c.locked_by.is_not(None))
            .values(locked_by=None, locked_until=None)
        ).rowcount
        conn.commit()
        return changed == 1

    return await repo.call(run)


def _key(flow: Flow, spec: TriggerSpec) -> tuple[str, str, str]:
    return (flow.namespace, flow.id, spec.id)
