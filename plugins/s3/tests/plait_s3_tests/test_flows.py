"""Flows run end to end by the real engine (Runner, SQLite repository, internal storage)."""

from __future__ import annotations

import json
import string
import textwrap
from typing import Any

import pytest
from plait.flows import State
from plait_s3 import Trigger

from .conftest import SECRETS, Engine, keys_of, make_context, outputs, read

MiB = 1 << 20


def flow(source: str, conn: dict[str, Any], **values: object) -> str:
    """The flow source with ``$name`` values substituted and each ``<connection>`` line
    expanded to the connection properties."""
    lines = []
    for line in string.Template(textwrap.dedent(source)).substitute(values).splitlines():
        if line.strip() == "<connection>":
            pad = line[: len(line) - len(line.lstrip())]
            lines += [f"{pad}{key}: {json.dumps(value)}" for key, value in conn.items()]
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


async def test_upload_a_file_made_by_a_task_and_download_it_back(
    engine: Engine, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    size = 6 * MiB + 3  # two parts of 5 MiB
    execution = await engine.run(
        flow(
            """
        id: roundtrip
        namespace: tests.s3
        tasks:
          - id: make
            type: s3test.MakeFile
            name: data.bin
            size: $size
          - id: upload
            type: plait.s3.Upload
            from: "{{ outputs.make.uri }}"
            bucket: $bucket
            key: exports/data.bin
            partSize: $part
            contentType: application/octet-stream
            metadata:
              origin: "{{ flow.id }}"
            accessKeyId: "{{ secret('AWS_ACCESS_KEY_ID') }}"
            secretKeyId: "{{ secret('AWS_SECRET_KEY_ID') }}"
            <connection>
          - id: download
            type: plait.s3.Download
            bucket: "{{ outputs.upload.bucket }}"
            key: "{{ outputs.upload.key }}"
            accessKeyId: "{{ secret('AWS_ACCESS_KEY_ID') }}"
            secretKeyId: "{{ secret('AWS_SECRET_KEY_ID') }}"
            <connection>
          - id: digest
            type: s3test.Digest
            uri: "{{ outputs.download.uri }}"
        """,
            conn,
            bucket=bucket,
            size=size,
            part=5 * MiB,
        )
    )
    assert execution.state is State.SUCCESS, execution.error
    made, uploaded, downloaded = (outputs(execution, t) for t in ("make", "upload", "download"))
    assert uploaded["key"] == "exports/data.bin"
    assert uploaded["eTag"].endswith('-2"')
    assert downloaded["contentLength"] == size
    assert downloaded["metadata"] == {"origin": "roundtrip"}
    assert downloaded["contentType"] == "application/octet-stream"
    assert outputs(execution, "digest")["sha256"] == made["sha256"]
    assert downloaded["uri"] != made["uri"]
    assert (await s3.head_object(Bucket=bucket, Key="exports/data.bin"))["ContentLength"] == size
    logs = await engine.logs(execution)
    assert "uploaded plait:///" in logs
    assert all(secret not in logs for secret in SECRETS.values())


async def test_kestra_flow_upload_list_copy_and_clean_up(
    engine: Engine, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    execution = await engine.run(
        flow(
            """
        id: kestra_style
        namespace: tests.s3
        tasks:
          - id: one
            type: s3test.MakeFile
            name: one.csv
            size: 100
          - id: two
            type: s3test.MakeFile
            name: two.csv
            size: 200
          - id: upload
            type: io.kestra.plugin.aws.s3.Upload
            from: |
              ["{{ outputs.one.uri }}", "{{ outputs.two.uri }}"]
            bucket: $bucket
            key: landing
            <connection>
          - id: list
            type: io.kestra.plugin.aws.s3.List
            bucket: $bucket
            prefix: landing/
            regexp: ".*two\\\\.csv"
            <connection>
          - id: copy
            type: io.kestra.plugin.aws.s3.Copy
            from:
              bucket: $bucket
              key: "{{ outputs.list.objects[0].key }}"
            to:
              key: archive/two.csv
            delete: true
            <connection>
          - id: cleanup
            type: io.kestra.plugin.aws.s3.DeleteList
            bucket: $bucket
            prefix: landing/
            <connection>
        """,
            conn,
            bucket=bucket,
        )
    )
    assert execution.state is State.SUCCESS, execution.error
    assert outputs(execution, "upload")["keys"] == ["landing/one.csv", "landing/two.csv"]
    listed = outputs(execution, "list")["objects"]
    assert [(o["key"], o["size"]) for o in listed] == [("landing/two.csv", 200)]
    assert outputs(execution, "copy")["key"] == "archive/two.csv"
    assert outputs(execution, "cleanup") == {"count": 1, "size": 100}
    assert await keys_of(s3, bucket) == ["archive/two.csv"]


async def test_trigger_hands_new_objects_to_an_execution(
    engine: Engine, conn: dict[str, Any], bucket: str, s3: Any
) -> None:
    await s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a,1\n")
    await s3.put_object(Bucket=bucket, Key="in/b.csv", Body=b"b,2\n")
    deployed, revision = await engine.runner.deploy(
        flow(
            """
id: on_upload
namespace: tests.s3
triggers:
  - id: watch
    type: io.kestra.plugin.aws.s3.Trigger
    interval: PT1M
    bucket: $bucket
    prefix: in/
    action: MOVE
    moveTo:
      key: processed
    <connection>
tasks:
  - id: each
    type: plait.core.ForEach
    values: "{{ trigger.objects | map(attribute='movedTo.key') | list }}"
    tasks:
      - id: download
        type: plait.s3.Download
        bucket: $bucket
        key: "{{ taskrun.value }}"
        <connection>
""",
            conn,
            bucket=bucket,
        ),
        file="flow.yaml",
    )
    # What the scheduler does: evaluate the trigger, start an execution with its variables.
    trigger = Trigger.model_validate(deployed.triggers[0].properties)
    ctx = make_context(engine.tmp, flow_id=deployed.id, task_id="watch")
    request = await trigger.evaluate(ctx)
    assert request is not None
    execution = await engine.runner.run(deployed, revision, {}, trigger=request.variables)
    assert execution.state is State.SUCCESS, execution.error
    downloads = sorted(
        (r.outputs["contentLength"], r.outputs["uri"].rsplit("/", 1)[-1])
        for r in execution.task_runs
        if r.task_id == "download"
    )
    assert downloads == [(4, "a.csv"), (4, "b.csv")]
    assert await trigger.evaluate(ctx) is None  # the batch was accepted: sources go
    assert await keys_of(s3, bucket) == ["processed/a.csv", "processed/b.csv"]
    assert await read(s3, bucket, "processed/b.csv") == b"b,2\n"


@pytest.mark.usefixtures("iam_auth")
async def test_bad_credentials_fail_the_execution_without_showing_them(
    engine: Engine, conn: dict[str, Any], bucket: str
) -> None:
    execution = await engine.run(
        flow(
            """
        id: denied
        namespace: tests.s3
        tasks:
          - id: list
            type: plait.s3.List
            bucket: $bucket
            accessKeyId: "{{ secret('BAD_ACCESS_KEY_ID') }}"
            secretKeyId: "{{ secret('BAD_SECRET_KEY_ID') }}"
            <connection>
        """,
            conn,
            bucket=bucket,
        )
    )
    assert execution.state is State.FAILED
    [run] = execution.task_runs
    assert run.error is not None
    assert "access key was rejected (InvalidAccessKeyId)" in run.error
    shown = "\n".join([run.error, execution.error or "", await engine.logs(execution)])
    assert "InvalidAccessKeyId" in shown
    assert SECRETS["BAD_ACCESS_KEY_ID"] not in shown
    assert SECRETS["BAD_SECRET_KEY_ID"] not in shown
    assert "Traceback" not in shown
