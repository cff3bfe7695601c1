"""S3 and scripts end to end: list new objects, process each in parallel with a Python script,
write the results back to S3.

The flow is the example of plugins/s3/README.md, as written there. It runs on the real engine
(the Runner over SQLite and local internal storage) with the installed plugins found through
their entry points, against moto's S3 server running in a child process on loopback. Only the
connection's endpoint is added to the flow's ``pluginDefaults``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from moto_server import moto_s3
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import PluginHost
from plait.records import Execution
from plait.storage import SqlRepository

README = Path(__file__).resolve().parents[2] / "plugins" / "s3" / "README.md"
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPLAITE2EPIPELINE",
    "AWS_SECRET_ACCESS_KEY": "plait-e2e-secret-access-key-never-shown",
}
#: The standard AWS chain must not find anything of the machine's own configuration.
AWS_ENV = {
    "AWS_CONFIG_FILE": "/nonexistent/plait-e2e/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/plait-e2e/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
BUCKET = "plait-e2e-pipeline"
#: incoming CSV files: key -> amounts (one row each).
CSV_FILES = {
    "incoming/a.csv": [1.5, 2.5],
    "incoming/b.csv": [10.0],
    "incoming/2024/06/c.csv": [1.0, 2.0, 3.0, 4.0],
    "incoming/d.csv": [],
    "incoming/e.csv": [0.25] * 7,
    "incoming/f.csv": [100.0, -50.0],
}
#: Objects the listing must leave out.
OTHER_FILES = {
    "incoming/notes.txt": b"not a CSV",
    "archive/old.csv": b"amount\n999\n",
    "incoming/dir/": b"",
}


def readme_flow() -> str:
    """The pipeline example of the S3 README."""
    text = README.read_text(encoding="utf-8")
    (flow,) = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
        if block.startswith("id: s3_csv_summaries\n")
    ]
    return str(flow)


def with_endpoint(flow: str, endpoint: str) -> str:
    """The flow with the endpoint added to the `plait.s3` plugin defaults."""
    marker = "  - type: plait.s3\n    values:\n"
    assert flow.count(marker) == 1
    extra = f"      endpointOverride: {endpoint}\n      forcePathStyle: true\n"
    return flow.replace(marker, marker + extra)


def csv_body(amounts: list[float]) -> bytes:
    return ("amount\n" + "".join(f"{a}\n" for a in amounts)).encode()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3(AWS_ENV) as endpoint:
        yield endpoint


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[Any]:
    """A raw client, to arrange and check the bucket."""
    async with get_session().create_client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id=SECRETS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        yield client


@pytest.fixture
async def host() -> AsyncIterator[PluginHost]:
    """The installed plugins, found through their entry points, as `plait` finds them."""
    found = PluginHost.discover()
    assert found.healthy, [r.errors for r in found.records if r.errors]
    try:
        yield found
    finally:
        await found.shutdown()  # closes the S3 plugin's pooled clients


@pytest.fixture
async def runner(tmp_path: Path, host: PluginHost) -> AsyncIterator[Runner]:
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()

    async def secrets(namespace: str, name: str) -> str:
        return SECRETS[name]

    try:
        yield Runner(
            repo,
            host,
            LocalStorageBackend(tmp_path / "storage"),
            secrets=secrets,
            poll_interval=0.05,
        )
    finally:
        await repo.close()


def _runs(execution: Execution, task_id: str) -> list[Any]:
    return [r for r in execution.task_runs if r.task_id == task_id]


def _most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


async def test_list_process_in_parallel_and_upload_results(
    runner: Runner, s3: Any, moto_endpoint: str
) -> None:
    await s3.create_bucket(Bucket=BUCKET)
    for key, amounts in CSV_FILES.items():
        await s3.put_object(Bucket=BUCKET, Key=key, Body=csv_body(amounts))
    for key, body in OTHER_FILES.items():
        await s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    source = with_endpoint(readme_flow(), moto_endpoint)
    flow, revision = await runner.deploy(source, file="plugins/s3/README.md")
    execution = await runner.run(flow, revision, {"bucket": BUCKET})
    assert execution.state is State.SUCCESS, execution.error

    # Every CSV under incoming/, and nothing else, was listed, processed and written back.
    listed = [o["key"] for o in _runs(execution, "list")[0].outputs["objects"]]
    assert sorted(listed) == sorted(CSV_FILES)
    for task_id in ("download", "summarise", "upload"):
        assert sorted(r.value for r in _runs(execution, task_id)) == sorted(CSV_FILES), task_id
    results: dict[str, Any] = {}
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=BUCKET, Prefix="results/"):
        for item in page.get("Contents", ()):
            got = await s3.get_object(Bucket=BUCKET, Key=item["Key"])
            async with got["Body"] as body:
                results[item["Key"]] = (json.loads(await body.read()), got["ContentType"])
    expected = {
        key.replace("incoming/", "results/").replace(".csv", ".json"): (
            {"source": key, "rows": len(amounts), "total": sum(amounts)},
            "application/json",
        )
        for key, amounts in CSV_FILES.items()
    }
    assert results == expected

    # The script's outputs and metrics went through `from plait_script import Plait`.
    by_value = {r.value: r.outputs for r in _runs(execution, "summarise")}
    assert {k: v["vars"] for k, v in by_value.items()} == {
        key: {"rows": len(amounts)} for key, amounts in CSV_FILES.items()
    }
    metrics = await runner.repo.metrics(execution.id)
    rows = sorted(m.value for m in metrics if m.task_id == "summarise" and m.name == "rows")
    assert rows == sorted(float(len(a)) for a in CSV_FILES.values())

    # The iterations ran in parallel (concurrencyLimit: 4), never more than 4 at once.
    spans = []
    for key in CSV_FILES:
        (download,) = [r for r in _runs(execution, "download") if r.value == key]
        (upload,) = [r for r in _runs(execution, "upload") if r.value == key]
        spans.append((download.history[0].date, upload.history[-1].date))
    assert 2 <= _most_at_once(spans) <= 4

    # Credentials never surface.
    logs = "\n".join(r.message for r in await runner.repo.logs(execution.id))
    stored = await runner.repo.get_execution(execution.id)
    assert stored is not None
    shown = logs + stored.model_dump_json()
    assert all(secret not in shown for secret in SECRETS.values())
