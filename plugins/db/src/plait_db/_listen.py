"""The ``plait.db.postgresql.Listen`` realtime trigger: one execution per PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from plait_sdk import Example, ExecutionRequest, RealtimeTrigger, RunContext, UserError
from pydantic import Field, SecretStr, field_validator

from plait_db._urls import resolve

#: Something ended the listening connection (the server restarted, the network dropped).
_CLOSED = object()


class Listen(RealtimeTrigger):
    """Start an execution for every ``NOTIFY`` on a PostgreSQL channel, as it happens.

    The trigger holds one connection that ``LISTEN``\\s on ``channel``; each notification
    starts one execution with ``trigger.channel``, ``trigger.payload`` (the text sent with
    ``NOTIFY channel, 'payload'`` or ``pg_notify()``; parsed when it is JSON) and
    ``trigger.pid`` (the sending backend). PostgreSQL delivers notifications only while the
    connection is open: those sent while the server is down or reconnecting are not seen
    (PostgreSQL keeps no backlog); use ``plait.db.Trigger`` on a table for a durable queue.
    A lost connection is an error: the server logs it, shows it as the trigger's last error
    and listens again after a back-off.
    """

    type_name: ClassVar[str] = "plait.db.postgresql.Listen"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="Handle each new order the moment the database announces it",
            full=True,
            code=(
                "id: order_created\n"
                "namespace: company.shop\n"
                "tasks:\n"
                "  - id: log\n"
                "    type: plait.core.Log\n"
                '    message: "order {{ trigger.payload.id }} created"\n'
                "triggers:\n"
                "  - id: listen\n"
                "    type: plait.db.postgresql.Listen\n"
                "    url: jdbc:postgresql://db.internal:5432/shop\n"
                "    username: app\n"
                "    password: \"{{ secret('SHOP_DB_PASSWORD') }}\"\n"
                "    channel: orders\n"
                "# in the database, e.g. in a trigger function:\n"
                "#   PERFORM pg_notify('orders', json_build_object('id', NEW.id)::text);"
            ),
        ),
    )

    url: str
    """PostgreSQL URL (``jdbc:postgresql://host:5432/db`` or ``postgresql://...``)."""
    username: str | None = None
    """User name; takes precedence over one in the URL."""
    password: SecretStr | None = None
    """Password, usually ``"{{ secret('DB_PASSWORD') }}"``; masked in logs and errors."""
    channel: str = Field(min_length=1, max_length=63)
    """The channel to ``LISTEN`` on (an identifier; case-sensitive as written)."""

    @field_validator("url")
    @classmethod
    def _postgresql(cls, value: str) -> str:
        if "{{" not in value and resolve(value).dialect != "postgresql":
            raise ValueError("plait.db.postgresql.Listen needs a PostgreSQL URL")
        return value

    async def listen(self, ctx: RunContext) -> AsyncIterator[ExecutionRequest]:
        rendered = await ctx.render(
            {
                "url": self.url,
                "username": self.username,
                "password": self.password.get_secret_value() if self.password else None,
                "channel": self.channel,
            }
        )
        if rendered["password"]:
            ctx.mask(rendered["password"])
        target = resolve(rendered["url"], rendered["username"], rendered["password"])
        if target.dialect != "postgresql":
            raise UserError("plait.db.postgresql.Listen needs a PostgreSQL URL", field="url")
        import asyncpg  # type: ignore[import-untyped]

        url = target.url.set(drivername="postgresql")
        connection = await asyncpg.connect(
            url.render_as_string(hide_password=False), **dict(target.connect_args)
        )
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def notified(_conn: Any, pid: int, channel: str, payload: str) -> None:
            queue.put_nowait((pid, channel, payload))

        def closed(_conn: Any) -> None:
            queue.put_nowait(_CLOSED)

        try:
            connection.add_termination_listener(closed)
            await connection.add_listener(rendered["channel"], notified)
            ctx.log.info("listening on channel %s of %s", rendered["channel"], target.display)
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    raise ConnectionError(f"the connection to {target.display} was closed")
                pid, channel, payload = item
                yield ExecutionRequest(
                    variables={"channel": channel, "payload": _parsed(payload), "pid": pid}
                )
        finally:
            # Cancelled (flow disabled or deleted, server stopping) or failed: let go of it.
            connection.terminate()


def _parsed(payload: str) -> Any:
    """A JSON payload as its value (objects, arrays); anything else as the text sent."""
    text = payload.strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return payload
