"""etl.http-to-postgres: a loopback JSON API, the Python transform, rows in PostgreSQL."""

from __future__ import annotations

from aiohttp import web
from blueprint_harness import Database, Plait, Saas
from plait.flows import State

ORDERS = [
    {"id": 1, "customer": "  ada  lovelace", "country": "gb ", "amount": 12.5, "status": "paid"},
    {"id": 2, "customer": "alan turing", "country": "GB", "amount": 0.99, "status": "cancelled"},
    {"id": 3, "customer": "GRACE HOPPER", "country": "us", "amount": 250, "status": "paid"},
]


async def test_records_are_transformed_and_upserted(plait: Plait, saas: Saas, pg: Database) -> None:
    async def orders(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t0ken":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"orders": ORDERS})

    api = saas.mount({"/orders": orders})
    table = pg.table("orders")
    inputs = {"api_url": api.url("/orders"), "api_token": "t0ken", "db_url": pg.jdbc,
              "table": table}  # fmt: skip
    execution = await plait.blueprint("etl.http-to-postgres", inputs)
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {"loaded": 2}
    rows = pg.sql(
        f"SELECT id, customer, country, amount_cents, execution_id FROM {table} ORDER BY id"
    )
    assert rows == [(1, "Ada Lovelace", "GB", 1250, execution.id),
                    (3, "Grace Hopper", "US", 25000, execution.id)]  # fmt: skip
    assert "t0ken" not in await plait.logs(execution)

    again = await plait.blueprint("etl.http-to-postgres", inputs)
    assert again.state is State.SUCCESS
    assert pg.sql(f"SELECT count(*), min(execution_id) FROM {table}") == [(2, again.id)]


async def test_a_wrong_token_stops_before_the_database(
    plait: Plait, saas: Saas, pg: Database
) -> None:
    api = saas.mount({"/orders": lambda r: _unauthorized()})
    table = pg.table("orders")
    execution = await plait.blueprint(
        "etl.http-to-postgres",
        {"api_url": api.url("/orders"), "api_token": "bad", "db_url": pg.jdbc, "table": table},
    )
    assert execution.state is State.FAILED
    assert pg.sql(f"SELECT to_regclass('{table}') IS NULL") == [(True,)]


async def _unauthorized() -> web.Response:
    return web.json_response({"error": "unauthorized"}, status=401)
