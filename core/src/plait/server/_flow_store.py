"""Flow revisions with optimistic concurrency, as API errors (the repository compares and
stores in one transaction: ``SqlRepository.save_flow_checked``)."""

from __future__ import annotations

from plait.records import FlowRevision
from plait.server._errors import ApiError
from plait.storage import FlowConflict, SqlRepository

NEW = 0
"""``expected`` for a flow that must not exist yet."""


async def save_checked(
    repo: SqlRepository, namespace: str, flow_id: str, source: str, expected: int | None
) -> tuple[FlowRevision, bool]:
    """Store ``source`` as the next revision when the latest is ``expected`` (``NEW``: none, or
    deleted; ``None``: any). An unchanged source keeps its revision. 409 on a conflict."""
    try:
        return await repo.save_flow_checked(namespace, flow_id, source, expected)
    except FlowConflict as conflict:
        if conflict.kind == "missing":
            raise ApiError(404, str(conflict)) from None
        message = str(conflict)
        if conflict.kind == "exists":
            message += ": update it with PUT /api/v1/flows/{namespace}/{id}"
        raise ApiError(409, message) from None
