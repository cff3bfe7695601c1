"""The ``plait.db.Trigger`` polling trigger: start a flow when a query returns rows."""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait_sdk import Example, ExecutionRequest, PollingTrigger, RunContext, UserError
from pydantic import Field, SecretStr, ValidationError, field_validator

from plait_db._execute import FetchType
from plait_db._tasks import Query, _aliases

#: Properties of the trigger that are not the query's.
_OWN = {"interval"}


class Trigger(PollingTrigger):
    """Run a query every ``interval``; start an execution when it returns at least one row.

    The execution gets the query's outputs as ``trigger.rows`` (``fetchType: FETCH``, the
    default), ``trigger.row`` (``FETCH_ONE``) or ``trigger.uri`` (``STORE``), and
    ``trigger.size``. Properties may use templates (``{{ secret('DB_PASSWORD') }}``): they are
    rendered at each poll. Mark the rows as handled so the next poll does not offer them again:
    ``afterSQL`` runs in the same transaction as the query.
    """

    type_name: ClassVar[str] = "plait.db.Trigger"
    aliases: ClassVar[tuple[str, ...]] = _aliases("Trigger")
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
        """Run the query; an execution request carrying its rows when there are some."""
        query = await self.query(ctx)
        output = await query.run(ctx)
        size = output.size or 0
        if size == 0:
            ctx.log.debug("the query returned no row: no execution")
            return None
        ctx.log.info("the query returned %d row(s): starting an execution", size)
        return ExecutionRequest(variables=output.dump())
