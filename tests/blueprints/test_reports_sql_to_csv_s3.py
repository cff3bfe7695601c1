"""reports.sql-to-csv-s3: a query on the real PostgreSQL, the CSV object in moto's S3."""

from __future__ import annotations

import datetime as dt

from blueprint_harness import S3, Database, Plait
from plait.flows import State


async def test_the_report_lands_in_the_bucket_as_csv(plait: Plait, pg: Database, s3: S3) -> None:
    table = pg.table("sales")
    pg.sql(f"CREATE TABLE {table} (day DATE, country TEXT, amount NUMERIC(10,2))")
    pg.sql(f"INSERT INTO {table} VALUES ('2024-05-01', 'GB', 10.5), ('2024-05-01', 'GB', 2), "
           "('2024-05-01', 'US', 7)")  # fmt: skip
    bucket = s3.bucket()
    execution = await plait.blueprint(
        "reports.sql-to-csv-s3",
        {
            "db_url": pg.jdbc,
            "sql": f"SELECT day, country, SUM(amount) AS total FROM {table} "
            "GROUP BY day, country ORDER BY country",
            "report": "daily-sales",
            "bucket": bucket,
            "prefix": "sales/",
            "s3_endpoint": s3.endpoint,
            "access_key_id": "AKIABLUEPRINTSDUMMY0",
            "secret_key_id": "blueprints-dummy-secret",
        },
    )
    assert execution.state is State.SUCCESS, execution.error
    today = dt.datetime.now(dt.UTC).date().isoformat()
    key = f"sales/daily-sales-{today}.csv"
    assert execution.outputs == {"key": key, "rows": 2}
    assert s3.objects(bucket) == {
        key: b"day,country,total\r\n2024-05-01,GB,12.50\r\n2024-05-01,US,7.00\r\n"
    }
