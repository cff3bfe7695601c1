"""Flows run end to end on the real engine, with the password read from a secret."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from plait.flows import State
from plait.records import Execution
from plait_db import ENGINES
from sqlalchemy.engine import make_url

from .conftest import MYSQL_URL, Db, Harness


def task_run(execution: Execution, task_id: str) -> Any:
    [found] = [r for r in execution.task_runs if r.task_id == task_id]
    return found


@pytest.fixture
async def db_user(mysql: Db) -> AsyncIterator[tuple[str, str]]:
    """A MariaDB user with a real password (the server checks it), dropped afterwards."""
    user = f"plait_{uuid.uuid4().hex[:10]}"
    password = f"S3cr:et/{uuid.uuid4().hex}"
    await mysql.execute(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw",
        pw=password,
    )
    database = make_url(MYSQL_URL).database
    await mysql.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
    try:
        yield user, password
    finally:
        await mysql.execute(f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.mark.services
async def test_secret_password_end_to_end(
    harness: Harness, mysql: Db, db_user: tuple[str, str]
) -> None:
    user, password = db_user
    harness.secrets["DB_PASSWORD"] = password
    table = mysql.table("flow")
    url = make_url(MYSQL_URL)
    execution = await harness.run(
        f"""
        id: db_secret
        namespace: tests.db
        inputs:
          - {{id: min_score, type: INT, defaults: 50}}
        tasks:
          - id: setup
            type: io.kestra.plugin.jdbc.mysql.Queries
            url: jdbc:mysql://{url.host}:{url.port}/{url.database}
            username: {user}
            password: "{{{{ secret('DB_PASSWORD') }}}}"
            sql: |
              CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40), score INT);
              INSERT INTO {table} VALUES (1, 'Ada', 90), (2, 'Bob', 40), (3, 'Cy', 75);
          - id: fetch
            type: plait.db.Query
            url: jdbc:mariadb://{url.host}:{url.port}/{url.database}
            username: {user}
            password: "{{{{ secret('DB_PASSWORD') }}}}"
            sql: SELECT name, score FROM {table} WHERE score >= :min ORDER BY id
            parameters:
              min: "{{{{ inputs.min_score }}}}"
            fetchType: FETCH
          - id: store
            type: plait.db.Query
            url: mysql://{user}@{url.host}:{url.port}/{url.database}
            password: "{{{{ secret('DB_PASSWORD') }}}}"
            sql: SELECT id FROM {table} ORDER BY id
            fetchType: STORE
          - id: report
            type: plait.core.Log
            message: "{{{{ outputs.fetch.size }}}} rows, first {{{{ outputs.fetch.rows[0].name }}}}"
        """
    )
    assert execution.state is State.SUCCESS, execution.error
    assert task_run(execution, "setup").outputs["affectedRows"] == 3
    assert task_run(execution, "fetch").outputs == {
        "rows": [{"name": "Ada", "score": 90}, {"name": "Cy", "score": 75}],
        "size": 2,
    }
    stored = task_run(execution, "store").outputs
    assert stored["size"] == 3
    everything = await harness.everything(execution)
    assert "2 rows, first Ada" in everything
    assert password not in everything
    # The stored file is the execution's own.
    assert stored["uri"].startswith(f"plait:///tests/db/db_secret/executions/{execution.id}/")

    # Shutting the process down closes the pools.
    assert len(ENGINES) >= 1
    await harness.host.shutdown()
    assert len(ENGINES) == 0


@pytest.mark.services
async def test_wrong_secret_password_fails_cleanly(
    harness: Harness, mysql: Db, db_user: tuple[str, str]
) -> None:
    user, _ = db_user
    wrong = f"wr0ng:{uuid.uuid4().hex}"
    harness.secrets["DB_PASSWORD"] = wrong
    url = make_url(MYSQL_URL)
    execution = await harness.run(
        f"""
        id: db_wrong_secret
        namespace: tests.db
        tasks:
          - id: fetch
            type: plait.db.Query
            url: jdbc:mysql://{url.host}:{url.port}/{url.database}?user={user}
            password: "{{{{ secret('DB_PASSWORD') }}}}"
            sql: SELECT 1
        """
    )
    assert execution.state is State.FAILED
    error = task_run(execution, "fetch").error
    assert error.startswith(f"cannot connect to mysql+aiomysql://{user}:***@")
    assert f"Access denied for user '{user}'" in error
    assert wrong not in await harness.everything(execution)


@pytest.mark.services
async def test_kestra_postgres_flow_with_outputs_in_templates(harness: Harness, pg: Db) -> None:
    table = pg.table("kestra")
    await pg.execute(
        f"CREATE TABLE {table} (id INT, total NUMERIC(8, 2), at TIMESTAMPTZ)",
        f"INSERT INTO {table} VALUES (1, 10.50, '2024-05-01T10:00:00Z'), "
        "(2, 4.25, '2024-05-02T10:00:00Z')",
    )
    harness.secrets["PG_PASSWORD"] = "any-password-trust-auth"
    url = make_url(pg.url)
    execution = await harness.run(
        f"""
        id: kestra_pg
        namespace: tests.db
        tasks:
          - id: latest
            type: io.kestra.plugin.jdbc.postgresql.Query
            url: jdbc:postgresql://{url.host}:{url.port}/{url.database}
            username: {url.username}
            password: "{{{{ secret('PG_PASSWORD') }}}}"
            sql: SELECT id, total, at FROM {table} ORDER BY at DESC
            fetchType: FETCH_ONE
          - id: since
            type: io.kestra.plugin.jdbc.postgresql.Queries
            url: jdbc:postgresql://{url.host}:{url.port}/{url.database}?user={url.username}
            sql: |
              UPDATE {table} SET total = total + 1 WHERE at >= :since;
              SELECT count(*) AS n, sum(total) AS sum FROM {table};
            parameters:
              since: "{{{{ outputs.latest.row.at }}}}"
            fetchType: FETCH_ONE
          - id: say
            type: plait.core.Log
            message: >-
              latest {{{{ outputs.latest.row.id }}}},
              n={{{{ outputs.since.outputs[0].row.n }}}}
        """
    )
    assert execution.state is State.SUCCESS, execution.error
    assert task_run(execution, "latest").outputs == {
        "row": {"id": 2, "total": "4.25", "at": "2024-05-02T10:00:00+00:00"},
        "size": 1,
    }
    since = task_run(execution, "since").outputs
    assert since["outputs"] == [{"row": {"n": 2, "sum": "15.75"}, "size": 1}]
    assert since["affectedRows"] == 1
    assert "latest 2, n=2" in await harness.everything(execution)


@pytest.mark.services
async def test_task_timeout_stops_the_query(harness: Harness, pg: Db) -> None:
    execution = await harness.run(
        f"""
        id: slow
        namespace: tests.db
        tasks:
          - id: sleep
            type: plait.db.Query
            url: {pg.url}
            sql: SELECT pg_sleep(10)
            timeout: PT0.5S
          - id: after
            type: plait.db.Query
            url: {pg.url}
            sql: SELECT 1 AS ok
            fetchType: FETCH_ONE
        errors:
          - id: recover
            type: plait.db.Query
            url: {pg.url}
            sql: SELECT 'recovered' AS state
            fetchType: FETCH_ONE
        """
    )
    assert execution.state is State.FAILED
    assert "timed out" in (task_run(execution, "sleep").error or "")
    assert task_run(execution, "recover").outputs == {"row": {"state": "recovered"}, "size": 1}


async def test_sqlite_flow_store_and_read_back(harness: Harness, tmp_path: Any) -> None:
    path = tmp_path / "flow.sqlite"
    execution = await harness.run(
        f"""
        id: sqlite_flow
        namespace: tests.db
        tasks:
          - id: build
            type: io.kestra.plugin.jdbc.sqlite.Queries
            url: jdbc:sqlite:{path}
            sql:
              - CREATE TABLE t (id INTEGER, doc TEXT)
              - >-
                INSERT INTO t VALUES (1, '{{"a": 1}}'), (2, ':not_a_param')
          - id: dump
            type: io.kestra.plugin.jdbc.sqlite.Query
            url: jdbc:sqlite:{path}
            sql: SELECT * FROM t ORDER BY id
            fetchType: STORE
        """
    )
    assert execution.state is State.SUCCESS, execution.error
    uri = task_run(execution, "dump").outputs["uri"]
    key = uri.removeprefix("plait:///")
    lines = (tmp_path / "storage" / key).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "doc": '{"a": 1}'},
        {"id": 2, "doc": ":not_a_param"},
    ]
