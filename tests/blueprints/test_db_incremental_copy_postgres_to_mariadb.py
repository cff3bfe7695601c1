"""db.incremental-copy-postgres-to-mariadb: real PostgreSQL -> real MariaDB, twice."""

from __future__ import annotations

from decimal import Decimal

from blueprint_harness import Database, Plait, task_run
from plait.flows import State


async def test_only_new_rows_are_copied_each_run(
    plait: Plait, pg: Database, maria: Database
) -> None:
    source, target = pg.table("src"), maria.table("dst")
    pg.sql(f"CREATE TABLE {source} (id INT PRIMARY KEY, name TEXT, amount NUMERIC(10,2), "
           "updated_at TIMESTAMP)")  # fmt: skip
    maria.sql(f"CREATE TABLE {target} (id INT PRIMARY KEY, name VARCHAR(50), "
              "amount DECIMAL(10,2), updated_at DATETIME)")  # fmt: skip
    pg.sql(f"INSERT INTO {source} VALUES (1, 'ada', 12.50, '2024-05-01 10:00'), "
           "(2, 'bob', 3.00, '2024-05-02 11:00')")  # fmt: skip
    inputs = {"source_url": pg.jdbc, "source_table": source, "target_url": maria.jdbc,
              "target_table": target}  # fmt: skip

    first = await plait.blueprint("db.incremental-copy-postgres-to-mariadb", inputs)
    assert first.state is State.SUCCESS, first.error
    assert first.outputs == {"copied": 2, "mark": 2}
    assert maria.sql(f"SELECT id, name, amount FROM {target} ORDER BY id") == [
        (1, "ada", Decimal("12.50")), (2, "bob", Decimal("3.00"))
    ]  # fmt: skip

    pg.sql(f"INSERT INTO {source} VALUES (3, 'cy', 7.25, '2024-05-03 12:00')")
    second = await plait.blueprint("db.incremental-copy-postgres-to-mariadb", inputs)
    assert second.state is State.SUCCESS, second.error
    assert second.outputs == {"copied": 1, "mark": 3}
    assert maria.sql(f"SELECT id, name FROM {target} ORDER BY id") == [
        (1, "ada"), (2, "bob"), (3, "cy")
    ]  # fmt: skip

    idle = await plait.blueprint("db.incremental-copy-postgres-to-mariadb", inputs)
    assert idle.state is State.SUCCESS, idle.error
    assert idle.outputs == {"copied": 0, "mark": 3}
    assert task_run(idle, "copy").outputs.get("evaluationResult") in (False, None)
