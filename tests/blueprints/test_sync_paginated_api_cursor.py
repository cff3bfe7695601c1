"""sync.paginated-api-cursor: pages followed, rows upserted, the cursor kept in KV between runs."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Database, Plait, Saas
from plait.flows import State

RECORDS = [{"id": n, "email": f"u{n}@example.com"} for n in range(1, 6)]


async def test_each_run_fetches_only_what_is_new(plait: Plait, saas: Saas, pg: Database) -> None:
    available = {"count": 3}

    async def contacts(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer crm-token":
            return web.json_response({"error": "unauthorized"}, status=401)
        start = int(request.query.get("cursor", "0"))
        end = min(start + 2, available["count"])  # pages of two
        page = RECORDS[start:end]
        more = end < available["count"]
        return web.json_response({"records": page, "next": str(end) if more else None})

    api = saas.mount({"/contacts": contacts})
    table = pg.table("contacts")
    inputs = {"name": table, "api_url": api.url("/contacts"), "api_token": "crm-token",
              "db_url": pg.jdbc, "table": table}  # fmt: skip
    first = await plait.blueprint("sync.paginated-api-cursor", inputs)
    assert first.state is State.SUCCESS, first.error
    assert first.outputs == {"records": 3, "cursor": "2"}
    assert [c.query.get("cursor") for c in api.calls()] == [None, "2"]
    rows = pg.sql(f"SELECT id, data->>'email' FROM {table} ORDER BY id")
    assert rows == [("1", "u1@example.com"), ("2", "u2@example.com"), ("3", "u3@example.com")]

    available["count"] = 5
    second = await plait.blueprint("sync.paginated-api-cursor", inputs)
    assert second.state is State.SUCCESS, second.error
    # From the stored cursor: record 3 again (the last page is re-read), then 4 and 5.
    assert second.outputs == {"records": 3, "cursor": "4"}
    assert [c.query.get("cursor") for c in api.calls()[2:]] == ["2", "4"]
    assert pg.sql(f"SELECT count(*) FROM {table}") == [(5,)]
