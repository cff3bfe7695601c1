"""db.data-quality-checks on a real PostgreSQL table: a clean table passes without an alert; a
table with a NULL key, a duplicated key, stale rows and a custom violation fails, and the alert
(through ops.error-notification) reaches the webhook stand-in on loopback."""

from __future__ import annotations

from blueprint_harness import Database, Plait, Saas, task_run
from plait.flows import State


def _orders(pg: Database, *, clean: bool) -> str:
    table = pg.table("orders")
    pg.sql(f"CREATE TABLE {table} (id INT, total NUMERIC(8,2), updated_at TIMESTAMPTZ)")
    pg.sql(f"INSERT INTO {table} VALUES (1, 10, now()), (2, 20, now() - interval '1 hour')")
    if not clean:
        pg.sql(f"INSERT INTO {table} VALUES (NULL, 5, now()), (2, -1, now()), (2, 7, now())")
        pg.sql(f"UPDATE {table} SET updated_at = now() - interval '2 days'")
    return table


def _inputs(pg: Database, table: str, alert_url: str, **more: object) -> dict[str, object]:
    custom = f"SELECT count(*) AS bad FROM {table} WHERE total < 0"
    return {"db_url": pg.jdbc, "db_user": pg.user, "table": table, "key_column": "id",
            "updated_column": "updated_at", "max_age_hours": 24, "alert_url": alert_url,
            "custom_sql": custom, **more}  # fmt: skip


async def test_a_clean_table_passes_without_an_alert(
    plait: Plait, saas: Saas, pg: Database
) -> None:
    hook = saas.mount({"/alert": {"ok": True}})
    table = _orders(pg, clean=True)
    execution = await plait.blueprint(
        "db.data-quality-checks", _inputs(pg, table, hook.url("/alert"))
    )
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {
        "failed": "",
        "counts": {"null_keys": 0, "duplicate_keys": 0, "freshness": 0, "custom": 0},
    }
    assert hook.calls() == []


async def test_bad_rows_alert_and_fail(plait: Plait, saas: Saas, pg: Database) -> None:
    hook = saas.mount({"/alert": {"ok": True}})
    table = _orders(pg, clean=False)
    execution = await plait.blueprint(
        "db.data-quality-checks", _inputs(pg, table, hook.url("/alert"))
    )
    assert execution.state is State.FAILED
    # The four checks ran, each in its own task run of the Parallel.
    checks = {t: task_run(execution, t) for t in ("null_keys", "duplicate_keys", "freshness",
                                                     "custom")}  # fmt: skip
    assert all(r.state is State.SUCCESS for r in checks.values())
    parallel = task_run(execution, "checks")
    assert {r.parent_id for r in checks.values()} == {parallel.id}
    assert task_run(execution, "fail").error == (
        f"data-quality checks failed on {table}: null_keys, duplicate_keys, freshness, custom"
    )
    [alert] = hook.calls("/alert")
    body = alert.json()
    assert body["severity"] == "warning"
    assert body["execution"] == execution.id
    assert body["text"] == (
        f"data quality of {table}: null_keys, duplicate_keys, freshness, custom failed "
        '({"null_keys":1,"duplicate_keys":2,"freshness":1,"custom":1})'
    )


async def test_without_fail_on_error_the_counts_are_the_outputs(
    plait: Plait, saas: Saas, pg: Database
) -> None:
    hook = saas.mount({"/alert": {"ok": True}})
    table = _orders(pg, clean=False)
    inputs = _inputs(
        pg, table, hook.url("/alert"), fail_on_error=False, custom_sql="SELECT 0 AS bad"
    )
    execution = await plait.blueprint("db.data-quality-checks", inputs)
    assert execution.state is State.SUCCESS, execution.error
    assert execution.outputs == {
        "failed": "null_keys, duplicate_keys, freshness",
        "counts": {"null_keys": 1, "duplicate_keys": 2, "freshness": 1, "custom": 0},
    }
    assert len(hook.calls("/alert")) == 1
