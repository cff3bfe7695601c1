"""``plait.s3.Trigger``: start an execution for new objects, each object exactly once.

How a batch goes through (``MOVE`` and ``DELETE``; see the README for the reasoning):

1. *List* the objects under ``prefix`` (at most ``maxKeys``).
2. *Prepare*: with ``MOVE``, copy each object to ``moveTo`` (server-side, only if its ETag is
   still the one listed). The sources stay where they are.
3. Keep the batch as ``pending`` in the trigger's durable state (``StatefulTrigger``) and return
   the :class:`ExecutionRequest`. The server stores that state in the SAME transaction as the
   execution: a pending batch in the stored state is a batch whose execution exists.
4. *Complete*, at the next evaluation (or :meth:`Trigger.acknowledge`): delete the sources (only
   if unchanged), then forget the batch.

A process that stops before the execution was stored leaves the old state: the sources are
still there and the next evaluation offers them again (copying again is harmless). One that
stops after finds the batch pending and completes it. No object is lost, skipped or offered in
two executions, and nothing is written to the bucket but the moves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

import pydantic
from plait_sdk import (
    Example,
    ExecutionRequest,
    Model,
    PollingTrigger,
    RunContext,
)
from pydantic import Field, field_validator, model_validator

from plait_s3._client import S3Client, error_code, is_not_found, s3_errors
from plait_s3._models import Action, Filter, ObjectLocation, S3Connection, S3Object
from plait_s3._ops import collect, compile_regexp, copy_object, gather_all, iter_objects
from plait_s3.tasks import KESTRA

#: Where earlier versions kept their state objects (never listed as new objects).
STATE_DIR = ".plait/s3-trigger/"
#: Copies or deletes of one batch running at once.
CONCURRENCY = 16
#: Error codes of a store that does not support conditional deletes (If-Match).
_NO_CONDITIONAL_DELETE = ("NotImplemented", "InvalidArgument", "InvalidRequest")

T = TypeVar("T")
R = TypeVar("R")


class MoveTo(Model):
    """Where ``MOVE`` puts processed objects."""

    bucket: str | None = None
    """Destination bucket (the watched bucket when unset)."""
    key: str
    """Destination folder; objects keep their path relative to ``prefix`` under it."""


class TriggerObject(S3Object):
    """An object of ``trigger.objects``."""

    bucket: str
    """The bucket it was found in."""
    uri: str
    """``s3://bucket/key`` where the execution can read it (the moved copy with ``MOVE``)."""
    moved_to: ObjectLocation | None = None
    """With ``MOVE``: where the object is moved (already copied when the execution starts)."""


class _Batch(Model):
    """A batch of objects handed to one execution."""

    batch_id: str
    action: Action
    created: datetime
    objects: list[TriggerObject]


class TriggerState(Model):
    """The trigger's durable state (stored by the server with the execution it starts)."""

    pending: _Batch | None = None
    """The batch handed over last: its execution exists; its sources are still to remove."""


class Trigger(PollingTrigger, S3Connection):
    """Start an execution when objects appear under a prefix, then MOVE or DELETE them.

    Every ``interval`` the bucket is listed; new objects (at most ``maxKeys``) start one execution
    with ``trigger.objects`` (``key``, ``bucket``, ``etag``, ``size``, ``lastModified``, ``uri``,
    ``movedTo``). With ``MOVE`` or ``DELETE`` each object is processed exactly once, across
    restarts too: the batch handed over is kept in the trigger's durable state, stored with its
    execution, and the objects leave the prefix only once that execution exists. With ``MOVE`` the
    copy exists before the execution starts: read objects from ``movedTo``. With ``NONE`` nothing
    is changed and the current objects are offered at every poll (an unchanged set is
    deduplicated).
    """

    type_name: ClassVar[str] = "plait.s3.Trigger"
    aliases: ClassVar[tuple[str, ...]] = (KESTRA + "Trigger",)
    state_model: ClassVar[type[pydantic.BaseModel] | None] = TriggerState
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Process each new file once, then archive it",
            full=True,
            code=(
                "id: s3_listen\nnamespace: company.team\n"
                "tasks:\n"
                "  - id: each\n    type: plait.core.ForEach\n"
                "    values: \"{{ trigger.objects | map(attribute='movedTo.key') | list }}\"\n"
                "    tasks:\n"
                "      - id: download\n        type: plait.s3.Download\n"
                "        bucket: archive\n"
                '        key: "{{ taskrun.value }}"\n'
                "triggers:\n"
                "  - id: watch\n    type: plait.s3.Trigger\n"
                '    interval: "PT5M"\n'
                "    accessKeyId: \"{{ secret('AWS_ACCESS_KEY_ID') }}\"\n"
                "    secretKeyId: \"{{ secret('AWS_SECRET_KEY_ID') }}\"\n"
                '    region: "eu-central-1"\n'
                '    bucket: "my-bucket"\n'
                '    prefix: "sub-dir/"\n'
                "    action: MOVE\n"
                "    moveTo:\n      bucket: archive\n      key: processed\n"
            ),
        ),
        Example(
            title="Delete CSV files of a MinIO bucket once handed to an execution",
            code=(
                "id: watch\ntype: plait.s3.Trigger\ninterval: PT30S\n"
                "endpointOverride: http://minio:9000\nforcePathStyle: true\n"
                "accessKeyId: \"{{ secret('MINIO_ACCESS_KEY') }}\"\n"
                "secretKeyId: \"{{ secret('MINIO_SECRET_KEY') }}\"\n"
                'bucket: landing\nprefix: in/\nregexp: ".*\\\\.csv"\naction: DELETE\n'
            ),
        ),
    )

    bucket: str
    """The bucket to watch."""
    prefix: str | None = None
    """Only keys starting with this prefix (a folder such as ``incoming/``)."""
    delimiter: str | None = None
    """Group keys on this character (``/``) to watch only the first level under ``prefix``."""
    regexp: str | None = None
    """Only keys that this regular expression matches entirely, e.g. ``.*\\.csv``."""
    max_keys: int = Field(default=1000, ge=1)
    """The most objects in one execution; the rest wait for the next polls."""
    filter: Filter = Filter.FILES
    """``FILES`` (default: folder markers ending with ``/`` are ignored), ``DIRECTORY`` or
    ``BOTH``."""
    action: Action
    """What happens to the objects once their execution is accepted: ``MOVE`` to ``moveTo``,
    ``DELETE``, or ``NONE`` (left in place and offered again at every poll)."""
    move_to: MoveTo | None = None
    """Destination of ``MOVE``: a bucket (default: the same) and a folder key."""
    state_key: str | None = None
    """Deprecated and ignored: the batch in flight now lives in the trigger's durable state in
    the server's database. Keys under ``.plait/s3-trigger/`` (where earlier versions kept it)
    and this key are still never listed as objects."""

    @field_validator("regexp")
    @classmethod
    def _valid_regexp(cls, value: str | None) -> str | None:
        compile_regexp(value)
        return value

    @model_validator(mode="after")
    def _valid_move(self) -> Trigger:
        if self.action is Action.MOVE:
            if self.move_to is None:
                raise ValueError("action MOVE needs moveTo (the folder to move objects to)")
            same_bucket = (self.move_to.bucket or self.bucket) == self.bucket
            if same_bucket and _folder(self.move_to.key) == _folder(self.prefix or ""):
                raise ValueError("moveTo must differ from the watched prefix")
        return self

    # -- evaluation -------------------------------------------------------------------------------

    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        """Complete the batch handed over last time, then offer the next one (or ``None``)."""
        client, settings = await self.client(ctx)
        with s3_errors(
            f"trigger on s3://{self.bucket}/{self.prefix or ''}",
            bucket=self.bucket,
            secrets=settings.secrets,
        ):
            if self.action is Action.NONE:
                return await self._offer_current(ctx, client)
            return await self._next_batch(ctx, client)

    async def acknowledge(self, ctx: RunContext) -> int:
        """Apply the action to the batch handed over last, now.

        For a caller that knows the execution was stored; otherwise the next :meth:`evaluate`
        does it. Returns the number of objects of the completed batch (0 when none pending).
        """
        state: TriggerState = self.state
        batch = state.pending
        if batch is None:
            return 0
        client, settings = await self.client(ctx)
        with s3_errors(
            f"trigger on s3://{self.bucket}/{self.prefix or ''}",
            bucket=self.bucket,
            secrets=settings.secrets,
        ):
            await self._complete(ctx, client, batch)
        state.pending = None
        return len(batch.objects)

    async def _offer_current(self, ctx: RunContext, client: S3Client) -> ExecutionRequest | None:
        objects = await self._scan(client, self._state_key(ctx))
        if not objects:
            return None
        found = [self._entry(o) for o in objects]
        digest = hashlib.sha256(
            json.dumps([[o.key, o.etag, str(o.last_modified)] for o in found]).encode()
        ).hexdigest()[:32]
        ctx.log.info("offering %d object(s) of s3://%s", len(found), self.bucket)
        return self._request(found, f"{self._slot(ctx, client)}:{digest}")

    async def _next_batch(self, ctx: RunContext, client: S3Client) -> ExecutionRequest | None:
        state: TriggerState = self.state
        if state.pending is not None:
            # Stored with its execution: the execution exists, the sources can go.
            await self._complete(ctx, client, state.pending)
            state.pending = None
        objects = await self._scan(client, self._state_key(ctx))
        if not objects:
            return None
        batch = _Batch(
            batch_id=uuid.uuid4().hex,
            action=self.action,
            created=datetime.now(UTC),
            objects=[self._entry(o) for o in objects],
        )
        batch = await self._prepare(ctx, client, batch)
        if not batch.objects:
            return None
        state.pending = batch
        ctx.log.info(
            "offering %d new object(s) of s3://%s (batch %s)",
            len(batch.objects),
            self.bucket,
            batch.batch_id,
        )
        return self._request(batch.objects, f"{self._slot(ctx, client)}:{batch.batch_id}")

    # -- steps ----------------------------------------------------------------------------------

    async def _scan(self, client: S3Client, state_key: str) -> list[S3Object]:
        moved = self.move_to
        dest_prefix = (
            _folder(moved.key)
            if self.action is Action.MOVE and moved and (moved.bucket or self.bucket) == self.bucket
            else None
        )

        def skip(key: str) -> bool:
            return (
                key == state_key
                or key.startswith(STATE_DIR)
                or (dest_prefix is not None and key.startswith(dest_prefix))
            )

        objects, _ = await collect(
            iter_objects(
                client,
                bucket=self.bucket,
                prefix=self.prefix,
                delimiter=self.delimiter,
                regexp=compile_regexp(self.regexp),
                filter=self.filter,
                skip=skip,
            ),
            self.max_keys,
        )
        return objects

    def _entry(self, obj: S3Object) -> TriggerObject:
        moved: ObjectLocation | None = None
        if self.action is Action.MOVE and self.move_to is not None:
            moved = ObjectLocation(
                bucket=self.move_to.bucket or self.bucket,
                key=_folder(self.move_to.key) + _relative(obj.key, self.prefix or ""),
            )
        where = moved or ObjectLocation(bucket=self.bucket, key=obj.key)
        return TriggerObject(
            **obj.model_dump(),
            bucket=self.bucket,
            uri=f"s3://{where.bucket}/{where.key}",
            moved_to=moved,
        )

    async def _prepare(self, ctx: RunContext, client: S3Client, batch: _Batch) -> _Batch:
        """With MOVE, copy every object to its destination; drop those gone or changed since."""
        if batch.action is not Action.MOVE:
            return batch

        async def copy(obj: TriggerObject) -> TriggerObject | None:
            assert obj.moved_to is not None
            try:
                await copy_object(
                    client,
                    source={"Bucket": obj.bucket, "Key": obj.key},
                    bucket=obj.moved_to.bucket,
                    key=obj.moved_to.key,
                    size=obj.size,
                    if_match=obj.etag,
                )
            except Exception as error:
                if is_not_found(error) or error_code(error) == "PreconditionFailed":
                    ctx.log.warning(
                        "s3://%s/%s changed or vanished since it was listed; left for a later poll",
                        obj.bucket,
                        obj.key,
                    )
                    return None
                raise
            return obj

        copied = await _bounded(copy, batch.objects)
        kept = [o for o in copied if o is not None]
        if len(kept) != len(batch.objects):
            batch = batch.model_copy(update={"objects": kept})
        return batch

    async def _complete(self, ctx: RunContext, client: S3Client, batch: _Batch) -> None:
        """The batch's execution exists: take its objects out of the prefix (idempotent: an
        object already gone is fine, so completing twice after a crash is harmless)."""

        async def remove(obj: TriggerObject) -> None:
            try:
                await client.delete_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag)
            except Exception as error:
                code = error_code(error)
                if is_not_found(error):
                    return  # done by an earlier attempt
                if code == "PreconditionFailed":
                    ctx.log.warning(
                        "s3://%s/%s was overwritten since it was listed; "
                        "the new version is left in place for a later poll",
                        obj.bucket,
                        obj.key,
                    )
                    return
                if code not in _NO_CONDITIONAL_DELETE:
                    raise
                head = await client.head_object(Bucket=obj.bucket, Key=obj.key)
                if head.get("ETag") == obj.etag:
                    await client.delete_object(Bucket=obj.bucket, Key=obj.key)

        if batch.action in (Action.MOVE, Action.DELETE):
            await _bounded(remove, batch.objects)
        verb = "moved" if batch.action is Action.MOVE else "deleted"
        ctx.log.info("%s %d object(s) of batch %s", verb, len(batch.objects), batch.batch_id)

    # -- state ------------------------------------------------------------------------------------

    def _state_key(self, ctx: RunContext) -> str:
        if self.state_key:
            return self.state_key
        parts = (getattr(ctx, name, None) or "-" for name in ("namespace", "flow_id", "task_id"))
        return STATE_DIR + "/".join(parts) + ".json"

    def _slot(self, ctx: RunContext, client: S3Client) -> str:
        """Identifies this trigger (its dedup keys): the same for every instance of it."""
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "aws"
        return f"{endpoint}|{self.bucket}|{self._state_key(ctx)}"

    @staticmethod
    def _request(objects: list[TriggerObject], dedup_key: str) -> ExecutionRequest:
        return ExecutionRequest(
            variables={"objects": [o.dump() for o in objects]},
            dedup_key=f"plait.s3.Trigger:{dedup_key}",
        )


def _folder(key: str) -> str:
    """``key`` as a folder prefix: ``a/b`` -> ``a/b/``; empty stays empty."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def _relative(key: str, prefix: str) -> str:
    """The part of ``key`` kept under ``moveTo``: its path below the watched folder."""
    rest = key[len(prefix) :]
    if not prefix or prefix.endswith("/") or rest.startswith("/"):
        return rest.lstrip("/") or key.rsplit("/", 1)[-1]
    parent = prefix.rpartition("/")[0]  # a prefix like "in/data" also matches "in/data-2.csv"
    return key[len(parent) + 1 :] if parent else key


async def _bounded(fn: Callable[[T], Awaitable[R]], items: list[T]) -> list[R]:
    """``fn`` over ``items``, at most :data:`CONCURRENCY` at a time; the first failure wins."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> R:
        async with slots:
            return await fn(item)

    return await gather_all([one(item) for item in items])
