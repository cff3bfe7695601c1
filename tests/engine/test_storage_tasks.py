"""Internal-storage tasks (Kestra's core.storage.*): Write, Concat, Split, Size, Delete."""

from __future__ import annotations

import pytest
from plait.flows import State, load_flow
from plait_sdk import ValidationError

from .conftest import Harness, runs, state_of


async def _texts(harness: Harness, uris: list[str], execution_id: str) -> list[str]:
    assert all(execution_id in uri for uri in uris)
    storage = harness.runner.storage
    out = []
    for uri in uris:
        key = uri.removeprefix("plait:///")
        out.append(b"".join([c async for c in storage.get(key)]).decode())
    return out


async def test_write_concat_size_and_delete(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: files
        namespace: t
        tasks:
          - id: a
            type: io.kestra.plugin.core.storage.Write
            content: "h\\n1\\n"
            extension: .csv
          - {id: b, type: io.kestra.core.tasks.storages.Write, content: "x"}
          - id: joined
            type: plait.core.storage.Concat
            files: ["{{ outputs.a.uri }}", "{{ outputs.b.uri }}"]
            separator: "--"
          - id: from_json
            type: plait.core.storage.Concat
            files: "{{ [outputs.b.uri, outputs.b.uri] | toJson }}"
            extension: .txt
          - {id: size, type: plait.core.storage.Size, uri: "{{ outputs.joined.uri }}"}
          - {id: gone, type: plait.core.storage.Delete, uri: "{{ outputs.b.uri }}"}
          - {id: again, type: plait.core.storage.Delete, uri: "{{ outputs.b.uri }}"}
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    out = {r.task_id: r.outputs for r in ex.task_runs}
    assert out["a"]["uri"].endswith("/a/" + runs(ex, "a")[0].id + "/write.csv")
    assert out["b"]["uri"].endswith("/write.tmp")
    joined, twice = await _texts(harness, [out["joined"]["uri"], out["from_json"]["uri"]], ex.id)
    assert joined == "h\n1\n--x--"  # the separator follows every file, as in Kestra
    assert twice == "xx"
    assert out["from_json"]["uri"].endswith("/concat.txt")
    assert out["size"] == {"size": len("h\n1\n--x--")}
    assert out["gone"] == {"uri": out["b"]["uri"], "deleted": True}
    assert out["again"] == {"uri": out["b"]["uri"], "deleted": False}


async def test_split_by_rows_bytes_partitions_and_pattern(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: split
        namespace: t
        tasks:
          - id: src
            type: plait.core.storage.Write
            content: "[a] 1\\r\\n[b] 2\\n[a] 3\\nno tag\\n[b] 4\\n[a] 5\\n"
            extension: .log
          - {id: rows, type: plait.core.storage.Split, from: "{{ outputs.src.uri }}", rows: 4}
          - {id: size, type: plait.core.storage.Split, from: "{{ outputs.src.uri }}", bytes: 12B}
          - id: parts
            type: io.kestra.plugin.core.storage.Split
            from: "{{ outputs.src.uri }}"
            partitions: 4
            separator: ";"
          - id: tags
            type: plait.core.storage.Split
            from: "{{ outputs.src.uri }}"
            regexPattern: "\\\\[(\\\\w+)\\\\]"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    out = {r.task_id: r.outputs for r in ex.task_runs}
    rows = await _texts(harness, out["rows"]["uris"], ex.id)
    assert rows == ["[a] 1\n[b] 2\n[a] 3\nno tag\n", "[b] 4\n[a] 5\n"]
    assert all(u.endswith(".log") for u in out["rows"]["uris"])
    # bytes: a new part once a part reached 12 bytes; lines are never cut
    assert await _texts(harness, out["size"]["uris"], ex.id) == [
        "[a] 1\n[b] 2\n",
        "[a] 3\nno tag\n",
        "[b] 4\n[a] 5\n",
    ]
    # partitions: lines dealt round-robin
    assert await _texts(harness, out["parts"]["uris"], ex.id) == [
        "[a] 1;[b] 4;",
        "[b] 2;[a] 5;",
        "[a] 3;",
        "no tag;",
    ]
    assert await _texts(harness, out["tags"]["uris"], ex.id) == [
        "[a] 1\n[a] 3\n[a] 5\n",
        "[b] 2\n[b] 4\n",
    ]


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("rows: 2\n    bytes: 1MB", "set exactly one of bytes, rows, partitions or regexPattern"),
        ("bytes: lots", "bytes: expected a size such as 10MB or 4096, got 'lots'"),
        ("regexPattern: 'a+'", "regexPattern needs a capture group: (...)"),
        ("rows: 0", "tasks[0].rows: should be greater than or equal to 1 (got 0)"),
    ],
)
async def test_split_settings_are_checked_when_the_flow_is_validated(
    harness: Harness, properties: str, message: str
) -> None:
    source = (
        "id: bad\nnamespace: t\ntasks:\n  - id: s\n    type: plait.core.storage.Split\n"
        f"    from: plait:///t/bad/executions/x/f.txt\n    {properties}\n"
    )
    with pytest.raises(ValidationError) as caught:
        load_flow(source, registry=harness.runner.host.registry, file="bad.yaml")
    assert message in str(caught.value)


async def test_storage_tasks_fail_clearly(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: failing
        namespace: t
        tasks:
          - {id: w, type: plait.core.storage.Write, content: x}
          - id: not_json
            type: plait.core.storage.Concat
            files: "{{ outputs.w.uri }}"
            allowFailure: true
          - id: missing
            type: plait.core.storage.Delete
            uri: "{{ outputs.w.uri }}.nope"
            errorOnMissing: true
            allowFailure: true
          - id: foreign
            type: plait.core.storage.Delete
            uri: plait:///t/other/executions/y/z.txt
            allowFailure: true
          - id: no_file
            type: plait.core.storage.Size
            uri: "{{ outputs.w.uri }}.nope"
            allowFailure: true
        """
    )
    errors = {r.task_id: r.error for r in ex.task_runs}
    assert errors["not_json"] is not None
    assert errors["not_json"].startswith("files: expected a list of URIs or a JSON array of them")
    assert errors["missing"] is not None
    assert errors["missing"].endswith(".nope to delete")
    assert errors["foreign"] == (
        "plait:///t/other/executions/y/z.txt is not a file of this execution; deletion refused"
    )
    assert errors["no_file"] is not None
    assert errors["no_file"].endswith(".nope does not exist")
    assert state_of(ex, "w") == "SUCCESS"
