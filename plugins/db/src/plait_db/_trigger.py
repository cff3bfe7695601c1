"""The ``plait.db.Trigger`` polling trigger: start a flow when a query returns rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait_sdk import Example, ExecutionRequest, PollingTrigger, RunContext, UserError
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from plait_db._execute import FetchType
from plait_db._tasks import Query, QueryOutput, _aliases

#: Properties of the trigger that are not the query's.
_OWN = {"interval"}
#: The longest a transaction with ``afterSQL`` stays open waiting for the server to store the
#: execution (it then rolls back: the rows are offered again).
SETTLE_TIMEOUT = 120.0


class TriggerState(BaseModel):
    """The durable state: the rows handed to an execution whose ``afterSQL`` commit is not
    confirmed yet (a digest per row). Stored with the execution; cleared once committed."""

    pending: list[str] = Field(default_factory=list)


def _digest(row: Any) -> str:
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Trigger(PollingTrigger):
    """Run a query every ``interval``; start an execution when it returns at least one row.

    The execution gets the query's outputs as ``trigger.rows`` (``fetchType: FETCH``, the
    default), ``trigger.row`` (``FETCH_ONE``) or ``trigger.uri`` (``STORE``), and
    ``trigger.size``. Properties may use templates (``{{ secret('DB_PASSWORD') }}``): they are
    rendered at each poll. Mark the rows as handled so the next poll does not offer them again:
    ``afterSQL`` runs in the same transaction as the query, and that transaction commits only
    once the server has stored the execution (:meth:`settle`): a server that stops in between
    leaves the rows unhandled, offered again at the next poll (never lost).
    """

    type_name: ClassVar[str] = "plait.db.Trigger"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Trigger")
    state_model: ClassVar[type[BaseModel] | None] = TriggerState
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Process new orders every minute, each order once",
            full=True,
            code=(
                "id: new_orders\n"
                "namespace: company.shop\n"
                "tasks:\n"
                "  - id: each\n"
                "    type: plait.core.ForEach\n"
                '    values: "{{ trigger.rows }}"\n'
                "    tasks:\n"
                "      - id: log\n"
                "        type: plait.core.Log\n"
                '        message: "order {{ (taskrun.value | fromJson).id }}"\n'
                "triggers:\n"
                "  - id: poll\n"
                "    type: plait.db.Trigger\n"
                "    interval: PT1M\n"
                "    url: jdbc:postgresql://db.internal:5432/shop\n"
                "    username: app\n"
                "    password: \"{{ secret('SHOP_DB_PASSWORD') }}\"\n"
                "    sql: |\n"
                "      SELECT id, customer, total FROM orders\n"
                "      WHERE handled_at IS NULL ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED\n"
                "    afterSQL: |\n"
                "      UPDATE orders SET handled_at = now() WHERE id IN (\n"
                "        SELECT id FROM orders WHERE handled_at IS NULL ORDER BY id LIMIT 500)\n"
                "    fetchType: FETCH"
            ),
        ),
    )

    url: str
    """Database URL, as for ``plait.db.Query`` (``jdbc:postgresql://host:5432/db``,
    ``jdbc:mysql://...``, ``jdbc:mariadb://...``, ``jdbc:sqlite:path.db`` or a SQLAlchemy
    URL)."""
    username: str | None = None
    """User name; takes precedence over one in the URL."""
    password: SecretStr | None = None
    """Password, usually ``"{{ secret('DB_PASSWORD') }}"`` (rendered at each poll); masked in
    logs, outputs and error messages."""
    sql: str
    """The query (one statement). It starts an execution when it returns at least one row.
    ``:name`` placeholders take their values from ``parameters``."""
    after_sql: str | None = Field(default=None, alias="afterSQL")
    """A statement run after ``sql`` in the same transaction, typically to mark the fetched
    rows as handled; both commit together or not at all."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Values bound to ``:name`` placeholders in ``sql`` and ``afterSQL``."""
    fetch_type: FetchType = FetchType.FETCH
    """How the rows reach the execution: ``FETCH`` (default: ``trigger.rows``, held in memory),
    ``FETCH_ONE`` (``trigger.row``) or ``STORE`` (``trigger.uri``, a JSON-lines file). ``NONE``
    is refused: the trigger needs the rows to decide."""
    fetch_size: int = Field(default=10_000, ge=1)
    """Rows fetched per round trip when streaming (``STORE``)."""
    time_zone_id: str | None = None
    """IANA time zone to express zone-aware timestamps in (``Europe/Paris``)."""
    fetch: bool = False
    """Deprecated (Kestra): use ``fetchType: FETCH``."""
    fetch_one: bool = False
    """Deprecated (Kestra): use ``fetchType: FETCH_ONE``."""
    store: bool = False
    """Deprecated (Kestra): use ``fetchType: STORE``."""

    @field_validator("fetch_type", mode="before")
    @classmethod
    def _fetch_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
        if value in ("NONE", FetchType.NONE):
            raise ValueError(
                "NONE gives the trigger no rows to decide on: use FETCH, FETCH_ONE or STORE"
            )
        return value

    @field_validator("time_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}'") from None
        return value

    #: The transaction kept open since the last evaluate (with afterSQL), and its decision.
    _open: tuple[asyncio.Task[QueryOutput], asyncio.Future[bool]] | None = PrivateAttr(None)
    #: ``state.pending`` before the evaluation whose transaction is open (a rollback restores it).
    _pending_before: list[str] = PrivateAttr(default_factory=list)

    async def query(self, ctx: RunContext) -> Query:
        """The ``plait.db.Query`` this poll runs, with its templates rendered."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=_OWN)
        if self.password is not None:
            data["password"] = self.password.get_secret_value()
        rendered = await ctx.render(data)
        try:
            return Query.model_validate(rendered)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'trigger'}: {e['msg']}"
                for e in error.errors(include_url=False, include_input=False)
            )
            raise UserError(f"{self.type_name}: {problems}") from None

    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        """Run the query; an execution request carrying its rows when there are some.

        With ``afterSQL`` the transaction stays open until :meth:`settle` (or the next
        evaluation, for a caller that never settles) commits it."""
        if self._open is not None:  # a caller that does not settle: the request was taken
            await self.settle(ctx, True)
        query = await self.query(ctx)
        if self.after_sql is None:
            output = await query.run(ctx)
        else:
            output = await self._hold(ctx, query)
        size = output.size or 0
        if size == 0:
            ctx.log.debug("the query returned no row: no execution")
            return None
        variables: dict[str, Any] | None = output.dump()
        if self.after_sql is not None and variables is not None:
            variables = self._not_handed_over(ctx, variables)
        if variables is None:
            await self.settle(ctx, True)  # already handed over: just mark them now
            return None
        ctx.log.info("the query returned %d row(s): starting an execution", variables["size"])
        return ExecutionRequest(variables=variables)

    def _not_handed_over(self, ctx: RunContext, variables: dict[str, Any]) -> dict[str, Any] | None:
        """Drop the rows an execution already got whose afterSQL never committed (the server
        stopped between storing the execution and the commit); remember the others as pending
        until their commit. ``None``: nothing left to hand over."""
        state: TriggerState = self.state
        self._pending_before = list(state.pending)
        seen = set(state.pending)
        if "rows" in variables:
            rows = [r for r in variables["rows"] if _digest(r) not in seen]
            state.pending = [_digest(r) for r in rows]
            if seen and len(rows) < len(variables["rows"]):
                ctx.log.info(
                    "%d row(s) already handed to an execution: not offered again",
                    len(variables["rows"]) - len(rows),
                )
            variables = {**variables, "rows": rows, "size": len(rows)}
            return variables if rows else None
        if "row" in variables:
            one = _digest(variables["row"])
            if one in seen:
                ctx.log.info("the row was already handed to an execution: not offered again")
                state.pending = []
                return None
            state.pending = [one]
        return variables  # STORE: the rows are in a file, offered as they are

    async def _hold(self, ctx: RunContext, query: Query) -> QueryOutput:
        """Run the query and afterSQL, keeping the transaction open when rows came back."""
        loop = asyncio.get_running_loop()
        got: asyncio.Future[QueryOutput] = loop.create_future()
        decision: asyncio.Future[bool] = loop.create_future()

        async def gate(output: QueryOutput) -> bool:
            if not output.size:
                return True  # nothing handed over: commit at once
            got.set_result(output)
            try:
                return await asyncio.wait_for(asyncio.shield(decision), SETTLE_TIMEOUT)
            except TimeoutError:
                ctx.log.warning(
                    "the execution was not confirmed within %gs: afterSQL rolled back, the rows "
                    "will be offered again",
                    SETTLE_TIMEOUT,
                )
                return False

        task = asyncio.create_task(query.run(ctx, gate=gate))
        try:
            await asyncio.wait([task, got], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the evaluation timed out or the server stops
            task.cancel()
            raise
        if not got.done():
            got.cancel()
            return task.result()  # no rows (committed), or the query's failure
        self._open = (task, decision)
        return got.result()

    async def settle(self, ctx: RunContext, accepted: bool) -> None:
        """Commit the transaction of the rows handed over (``afterSQL``) once their execution
        is stored; roll it back when it could not be (the rows are offered again)."""
        if self._open is None:
            return
        task, decision = self._open
        self._open = None
        if not decision.done():
            decision.set_result(accepted)
        try:
            await task
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if accepted:  # the execution exists; the rows stay unhandled and come again
                ctx.log.warning(
                    "afterSQL did not commit after the execution was created (%s): the rows "
                    "will be offered again",
                    error,
                )
                return
            raise
        if accepted:
            state: TriggerState = self.state
            state.pending = []  # committed: nothing in doubt any more
        else:
            state = self.state
            state.pending = self._pending_before  # as stored: nothing more was handed over
            ctx.log.info("the execution could not be stored: afterSQL rolled back")
