"""Flow revisions with optimistic concurrency: compare and store in one transaction."""

from __future__ import annotations

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from plait.engine._model import FlowRevision, utcnow
from plait.server._errors import ApiError
from plait.storage import SqlRepository
from plait.storage._sql import _latest_flow
from plait.storage._tables import flows

NEW = 0
"""``expected`` for a flow that must not exist yet."""


async def save_checked(
    repo: SqlRepository, namespace: str, flow_id: str, source: str, expected: int | None
) -> tuple[FlowRevision, bool]:
    """Store ``source`` as the next revision when the latest is ``expected`` (``NEW``: none, or
    deleted; ``None``: any). An unchanged source keeps its revision. 409 on a conflict."""

    def run(conn: Connection) -> tuple[FlowRevision, bool]:
        latest = _latest_flow(conn, namespace, flow_id, include_deleted=True)
        live = latest if latest is not None and not latest.deleted else None
        if expected == NEW and live is not None:
            conn.commit()
            raise ApiError(
                409,
                f"flow {namespace}.{flow_id} already exists (revision {live.revision}): "
                "update it with PUT /api/v1/flows/{namespace}/{id}",
            )
        if expected not in (None, NEW):
            if live is None:
                conn.commit()
                raise ApiError(404, f"flow {namespace}.{flow_id} not found")
            if live.revision != expected:
                conn.commit()
                raise ApiError(
                    409,
                    f"flow {namespace}.{flow_id} is at revision {live.revision}, not {expected}: "
                    "someone else changed it; fetch it again and re-apply your change",
                )
        if live is not None and live.source == source:
            conn.commit()
            return live, False
        revision = FlowRevision(
            namespace=namespace,
            flow_id=flow_id,
            revision=(latest.revision + 1) if latest else 1,
            source=source,
            created=utcnow(),
        )
        try:
            conn.execute(insert(flows).values(**revision.model_dump(by_alias=False)))
            conn.commit()
        except IntegrityError:
            conn.rollback()
            raise ApiError(
                409, f"flow {namespace}.{flow_id} was changed at the same time; try again"
            ) from None
        return revision, True

    return await repo.call(run)
