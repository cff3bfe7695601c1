"""Property-based tests: random flows against an oracle of what must have run and how it ends.

Flows are generated from leaves (succeed / fail, optionally allowFailure) nested in Sequential,
Parallel, If, ForEach and AllowFailure, with flow-level errors, finally and afterExecution. For
every flow the real runner over a real SQLite store must terminate, run every reachable leaf exactly
once (per ForEach value) and nothing else, run errors exactly when the main block failed and
finally always, and end in the state the oracle computes.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import PluginHost
from plait.storage import SqlRepository

from . import testplugin

HOST = PluginHost.discover(entry_points=False, extra=[testplugin])
OK, WARN, FAIL = State.SUCCESS, State.WARNING, State.FAILED


@dataclass
class Node:
    kind: str  # ok, fail, seq, par, if, each, allow
    allow: bool = False
    children: list[Node] = field(default_factory=list)
    other: list[Node] = field(default_factory=list)  # If's else branch
    flag: bool = True  # If's condition
    id: str = ""


leaves = st.builds(Node, kind=st.sampled_from(["ok", "ok", "fail"]), allow=st.booleans())


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    block = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.builds(Node, kind=st.sampled_from(["seq", "par", "each", "allow"]), children=block),
        st.builds(
            Node,
            kind=st.just("if"),
            children=block,
            other=st.lists(children, max_size=2),
            flag=st.booleans(),
        ),
    )


trees = st.recursive(leaves, _extend, max_leaves=8)


@dataclass
class Generated:
    main: list[Node]
    errors: list[Node]
    finally_: list[Node]
    after: list[Node]


flows = st.builds(
    Generated,
    main=st.lists(trees, min_size=1, max_size=3),
    errors=st.lists(leaves, max_size=2),
    finally_=st.lists(leaves, max_size=2),
    after=st.lists(leaves, max_size=2),
)


def _to_task(node: Node, counter: itertools.count[int]) -> dict[str, Any]:
    node.id = f"t{next(counter)}"
    task: dict[str, Any] = {"id": node.id}
    if node.kind == "ok":
        task.update(type="test.Record", key=node.id)
    elif node.kind == "fail":
        task.update(type="plait.core.Fail", errorMessage=f"{node.id} failed")
    elif node.kind == "seq":
        task.update(type="plait.core.Sequential")
    elif node.kind == "par":
        task.update(type="plait.core.Parallel")
    elif node.kind == "allow":
        task.update(type="plait.core.AllowFailure")
    elif node.kind == "each":
        task.update(type="plait.core.ForEach", values=["a", "b"], concurrencyLimit=0)
    elif node.kind == "if":
        task.update(type="plait.core.If", condition=f"{{{{ {str(node.flag).lower()} }}}}")
    if node.kind in ("ok", "fail") and node.allow:
        task["allowFailure"] = True
    if node.kind in ("seq", "par", "allow", "each"):
        task["tasks"] = [_to_task(c, counter) for c in node.children]
    if node.kind == "if":
        task["then"] = [_to_task(c, counter) for c in node.children]
        if node.other:
            task["else"] = [_to_task(c, counter) for c in node.other]
    return task


def _combine(states: list[State]) -> State:
    if FAIL in states:
        return FAIL
    return WARN if WARN in states else OK


def _block(nodes: list[Node], ran: Counter[str], times: int, *, parallel: bool) -> State:
    states = []
    for node in nodes:
        state = _expect(node, ran, times)
        states.append(state)
        if state is FAIL and not parallel:
            break
    return _combine(states)


def _expect(node: Node, ran: Counter[str], times: int) -> State:
    """The oracle: the end state of ``node``, counting the leaves it runs in ``ran``."""
    if node.kind in ("ok", "fail"):
        if node.kind == "ok":
            ran[node.id] += times
            return OK
        return WARN if node.allow else FAIL
    if node.kind == "seq":
        return _block(node.children, ran, times, parallel=False)
    if node.kind == "par":
        return _block(node.children, ran, times, parallel=True)
    if node.kind == "allow":
        state = _block(node.children, ran, times, parallel=False)
        return WARN if state is FAIL else state
    if node.kind == "each":
        return _block(node.children, ran, times * 2, parallel=False)
    branch = node.children if node.flag else node.other
    return _block(branch, ran, times, parallel=False) if branch else OK


async def _run(source: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        repo = SqlRepository.sqlite(Path(tmp) / "plait.db")
        await repo.open()
        try:
            runner = Runner(repo, HOST, LocalStorageBackend(Path(tmp) / "s"), poll_interval=0.05)
            flow, revision = await runner.deploy(source, file="generated.yaml")
            execution = await asyncio.wait_for(runner.run(flow, revision, {}), 20)
            stored = await repo.get_execution(execution.id)
            return execution, stored
        finally:
            await repo.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows)
def test_generated_flows_match_the_oracle(generated: Generated) -> None:
    counter = itertools.count()
    document = {
        "id": "generated",
        "namespace": "prop",
        "tasks": [_to_task(n, counter) for n in generated.main],
    }
    if generated.errors:
        document["errors"] = [_to_task(n, counter) for n in generated.errors]
    if generated.finally_:
        document["finally"] = [_to_task(n, counter) for n in generated.finally_]
    if generated.after:
        document["afterExecution"] = [_to_task(n, counter) for n in generated.after]
    source = yaml.safe_dump(document, sort_keys=False)

    ran: Counter[str] = Counter()
    main = _block(generated.main, ran, 1, parallel=False)
    expected = main
    if main is FAIL:
        _block(generated.errors, ran, 1, parallel=False)
    if generated.finally_ and _block(generated.finally_, ran, 1, parallel=False) is FAIL:
        expected = FAIL
    _block(generated.after, ran, 1, parallel=False)  # runs whatever happened, changes nothing

    testplugin.reset()
    execution, stored = asyncio.run(_run(source))

    # terminates, in the oracle's state, and what is stored is what was returned
    assert execution.state is expected, source
    assert stored.state is expected
    assert len(stored.task_runs) == len(execution.task_runs)
    # every reachable leaf ran exactly once per ForEach value, and nothing else ran
    assert Counter({k: len(v) for k, v in testplugin.CALLS.items()}) == ran, source
    # no task run ran twice in one attempt, none is left unfinished, each key is unique
    for run in execution.task_runs:
        assert run.state.terminal, (run.task_id, run.state)
        assert len(run.attempts) <= 1
    keys = Counter((r.parent_id, r.iteration, r.value, r.task_id) for r in execution.task_runs)
    assert max(keys.values()) == 1
    # errors ran exactly when the main block failed; finally always ran
    started = {r.task_id for r in execution.task_runs}
    # (both are sequential blocks: their first task always starts, the rest stop at a failure)
    if generated.errors:
        assert (generated.errors[0].id in started) == (main is FAIL), source
    if main is not FAIL:
        assert not started & {n.id for n in generated.errors}
    if generated.finally_:
        assert generated.finally_[0].id in started
    # afterExecution always ran, after everything else, and did not change the state
    if generated.after:
        assert generated.after[0].id in started
        last_other = max(
            (
                t.date
                for r in execution.task_runs
                if r.task_id not in {n.id for n in generated.after}
                for t in r.history
            ),
            default=None,
        )
        first_after = min(
            t.date
            for r in execution.task_runs
            if r.task_id == generated.after[0].id
            for t in r.history
        )
        assert last_other is None or first_after >= last_other, source
