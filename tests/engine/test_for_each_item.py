"""ForEachItem (Kestra's): split a file of items into batches, one subflow execution each."""

from __future__ import annotations

import json

import pytest
from plait.flows import State, load_flow
from plait_sdk import ValidationError

from . import testplugin
from .conftest import Harness, runs

CHILD = """
id: orders
namespace: t
inputs:
  - {id: batch, type: STRING}
  - {id: index, type: INT}
tasks:
  - id: seen
    type: test.Record
    key: batches
    value: "{{ inputs.index }}:{{ read(inputs.batch) }}"
  - {id: maybe_fail, type: plait.core.Fail, condition: "{{ 'bad' in read(inputs.batch) }}"}
outputs:
  - {id: size, type: INT, value: "{{ fileSize(inputs.batch) }}"}
"""


def _parent(content: str, batch: str = "rows: 2", extra: str = "") -> str:
    return f"""
        id: parent
        namespace: t
        tasks:
          - id: extract
            type: plait.core.storage.Write
            content: "{content}"
            extension: .jsonl
          - id: each
            type: io.kestra.plugin.core.flow.ForEachItem
            items: "{{{{ outputs.extract.uri }}}}"
            batch:
              {batch}
            namespace: t
            flowId: orders
            inputs:
              batch: "{{{{ taskrun.items }}}}"
              index: "{{{{ taskrun.iteration }}}}"
            {extra}
        """


async def test_one_subflow_execution_per_batch(harness: Harness) -> None:
    await harness.deploy(CHILD)
    ex = await harness.run(_parent("a\\nb\\nc\\nd\\ne\\n"))
    assert ex.state is State.SUCCESS, ex.error
    out = {r.task_id: r.outputs for r in ex.task_runs if not r.value}
    assert out["each_items"] == {"numberOfBatches": 3, "iterations": {"SUCCESS": 3}}
    assert len(out["each_split"]["uris"]) == 3
    assert all(u.endswith(".jsonl") for u in out["each_split"]["uris"])
    assert sorted(testplugin.CALLS["batches"]) == ["0:a\nb\n", "1:c\nd\n", "2:e\n"]
    subflows = runs(ex, "each_subflow")
    assert [r.iteration for r in subflows] == [0, 1, 2]
    assert [r.value for r in subflows] == out["each_split"]["uris"]
    children = [await harness.repo.get_execution(r.outputs["executionId"]) for r in subflows]
    assert [c.outputs["size"] for c in children if c is not None] == [4, 4, 2]
    assert all(c is not None and c.parent_execution_id == ex.id for c in children)
    # <id>_merge: every subflow's outputs in one JSON-lines file, in batch order
    merged_uri = out["each_merge"]["subflowOutputs"]
    key = merged_uri.removeprefix("plait:///")
    merged = b"".join([c async for c in harness.runner.storage.get(key)]).decode()
    assert [json.loads(line) for line in merged.splitlines()] == [
        {"size": 4},
        {"size": 4},
        {"size": 2},
    ]


async def test_a_failed_batch_fails_the_task_and_is_counted(harness: Harness) -> None:
    await harness.deploy(CHILD)
    ex = await harness.run(_parent("a\\nbad\\nc\\n", batch="rows: 1"))
    assert ex.state is State.FAILED
    items = runs(ex, "each_items")[0]
    assert items.outputs == {"numberOfBatches": 3, "iterations": {"SUCCESS": 2, "FAILED": 1}}
    testplugin.reset()
    ex = await harness.run(_parent("a\\nbad\\n", batch="rows: 1", extra="transmitFailed: false"))
    assert ex.state is State.SUCCESS


async def test_partitions_and_a_for_each_item_inside_a_loop(harness: Harness) -> None:
    await harness.deploy(CHILD)
    ex = await harness.run(
        """
        id: looped
        namespace: t
        tasks:
          - id: files
            type: plait.core.ForEach
            values: ["x", "y"]
            tasks:
              - id: extract
                type: plait.core.storage.Write
                content: "{{ taskrun.value }}1\\n{{ taskrun.value }}2\\n{{ taskrun.value }}3\\n"
              - id: each
                type: plait.core.ForEachItem
                items: "{{ currentEachOutput(outputs.extract).uri }}"
                batch: {partitions: 2}
                namespace: t
                flowId: orders
                inputs: {batch: "{{ taskrun.items }}", index: "{{ taskrun.iteration }}"}
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert sorted(testplugin.CALLS["batches"]) == ["0:x1\nx3\n", "0:y1\ny3\n", "1:x2\n", "1:y2\n"]
    assert [r.outputs["numberOfBatches"] for r in runs(ex, "each_items")] == [2, 2]


def test_generated_task_ids_are_checked(harness: Harness) -> None:
    with pytest.raises(ValidationError) as caught:
        load_flow(
            "id: p\nnamespace: t\ntasks:\n"
            "  - id: each\n    type: plait.core.ForEachItem\n    items: x\n"
            "    namespace: t\n    flowId: orders\n"
            "  - {id: each_split, type: plait.core.Log, message: clash}\n",
            registry=harness.runner.host.registry,
            file="p.yaml",
        )
    assert "p.yaml:9:10: tasks[1].id: duplicate task id 'each_split' (first used at line 4)" in str(
        caught.value
    )


async def test_items_must_be_an_internal_storage_uri(harness: Harness) -> None:
    await harness.deploy(CHILD)
    ex = await harness.run(
        """
        id: bad_items
        namespace: t
        tasks:
          - {id: each, type: plait.core.ForEachItem, items: data.csv, namespace: t, flowId: orders}
        """
    )
    assert ex.state is State.FAILED
    assert ex.error == (
        "task 'each_split' failed: items: expected an internal storage URI (plait:///...), "
        "got 'data.csv'"
    )
