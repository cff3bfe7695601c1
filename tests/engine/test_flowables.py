"""Core flowable tasks, run by the real runner over a real SQLite store."""

from __future__ import annotations

import pytest
from plait.flows import State
from plait_sdk import ValidationError

from . import testplugin
from .conftest import Harness, runs, state_of


async def test_sequential_outputs_feed_later_tasks(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: seq
        namespace: t
        tasks:
          - id: a
            type: plait.core.Return
            format: "1"
          - id: group
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: b
                type: plait.core.Return
                format: "{{ outputs.a.value }}2"
          - id: c
            type: plait.core.Return
            format: "{{ outputs.b.value }}3"
        """
    )
    assert ex.state is State.SUCCESS
    assert runs(ex, "c")[0].outputs == {"value": "123"}
    group = runs(ex, "group")[0]
    assert runs(ex, "b")[0].parent_id == group.id
    # Every transition is time-stamped, in order.
    for run in ex.task_runs:
        dates = [t.date for t in run.history]
        assert dates == sorted(dates)
        assert [t.state for t in run.history][-1] is run.state


async def test_parallel_respects_its_concurrency_limit(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: par
        namespace: t
        tasks:
          - id: p
            type: io.kestra.plugin.core.flow.Parallel
            concurrent: 2
            tasks:
              - {id: p1, type: test.Probe}
              - {id: p2, type: test.Probe}
              - {id: p3, type: test.Probe}
              - {id: p4, type: test.Probe}
              - {id: p5, type: test.Probe}
        """
    )
    assert ex.state is State.SUCCESS
    assert testplugin.GAUGE["max"] == 2


async def test_parallel_unlimited_runs_all_at_once(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: par
        namespace: t
        tasks:
          - id: p
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - {id: p1, type: test.Probe, seconds: 0.1}
              - {id: p2, type: test.Probe, seconds: 0.1}
              - {id: p3, type: test.Probe, seconds: 0.1}
              - {id: p4, type: test.Probe, seconds: 0.1}
        """
    )
    assert ex.state is State.SUCCESS
    assert testplugin.GAUGE["max"] == 4


async def test_parallel_failure_fails_the_group(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: par
        namespace: t
        tasks:
          - id: p
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - {id: ok, type: test.Probe}
              - {id: bad, type: plait.core.Fail, errorMessage: nope}
          - id: after
            type: test.Record
        """
    )
    assert ex.state is State.FAILED
    assert state_of(ex, "p") == "FAILED"
    assert state_of(ex, "ok") == "SUCCESS"
    assert runs(ex, "after") == []
    assert "nope" in (ex.error or "")


async def test_if_takes_one_branch(harness: Harness) -> None:
    source = """
        id: cond
        namespace: t
        inputs:
          - {id: n, type: INT}
        tasks:
          - id: check
            type: io.kestra.plugin.core.flow.If
            condition: "{{ inputs.n > 10 }}"
            then:
              - {id: big, type: test.Record, value: big}
            else:
              - {id: small, type: test.Record, value: small}
        """
    ex = await harness.run(source, {"n": 11})
    assert ex.state is State.SUCCESS
    assert [r.task_id for r in ex.task_runs] == ["check", "big"]
    assert runs(ex, "check")[0].outputs == {"evaluationResult": True}
    ex = await harness.run(source, {"n": 3})
    assert [r.task_id for r in ex.task_runs] == ["check", "small"]


async def test_switch_case_and_defaults(harness: Harness) -> None:
    source = """
        id: sw
        namespace: t
        inputs:
          - {id: v, type: STRING}
        tasks:
          - id: s
            type: io.kestra.plugin.core.flow.Switch
            value: "{{ inputs.v }}"
            cases:
              a: [{id: ca, type: test.Record, value: a}]
              b: [{id: cb, type: test.Record, value: b}]
            defaults: [{id: cd, type: test.Record, value: d}]
        """
    for given, expected in (("a", "ca"), ("b", "cb"), ("zzz", "cd")):
        ex = await harness.run(source, {"v": given})
        assert ex.state is State.SUCCESS
        assert [r.task_id for r in ex.task_runs] == ["s", expected]


async def test_for_each_values_iteration_and_concurrency(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: each
        namespace: t
        tasks:
          - id: loop
            type: io.kestra.plugin.core.flow.ForEach
            values: ["x", "y", "z"]
            concurrencyLimit: 2
            tasks:
              - id: probe
                type: test.Probe
              - id: rec
                type: test.Record
                value: "{{ taskrun.value }}-{{ taskrun.iteration }}"
          - id: after
            type: plait.core.Return
            format: "{{ outputs.rec['y'].value }}"
        """
    )
    assert ex.state is State.SUCCESS
    assert sorted(testplugin.CALLS["record"]) == ["x-0", "y-1", "z-2"]
    assert testplugin.GAUGE["max"] == 2
    assert runs(ex, "after")[0].outputs == {"value": "y-1"}


async def test_for_each_values_from_a_template_and_nested_parents(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: nested
        namespace: t
        tasks:
          - id: list
            type: plait.core.Return
            format: '["a", "b"]'
          - id: outer
            type: io.kestra.plugin.core.flow.ForEach
            values: "{{ outputs.list.value }}"
            tasks:
              - id: inner
                type: io.kestra.plugin.core.flow.ForEach
                values: [1, 2]
                tasks:
                  - id: rec
                    type: test.Record
                    value: "{{ parents[0].taskrun.value }}{{ taskrun.value }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert sorted(testplugin.CALLS["record"]) == ["a1", "a2", "b1", "b2"]


async def test_for_each_values_must_be_a_list(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: bad
        namespace: t
        tasks:
          - id: loop
            type: io.kestra.plugin.core.flow.ForEach
            values: "not a list"
            tasks:
              - {id: rec, type: test.Record}
        """
    )
    assert ex.state is State.FAILED
    assert "values must be a list" in (runs(ex, "loop")[0].error or "")


async def test_dag_runs_in_dependency_order(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: dag
        namespace: t
        tasks:
          - id: dag
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task: {id: load, type: test.Record, value: load}
                dependsOn: [clean, enrich]
              - task: {id: clean, type: test.Record, value: clean}
                dependsOn: [extract]
              - task: {id: enrich, type: test.Record, value: enrich}
                dependsOn: [extract]
              - task: {id: extract, type: test.Record, value: extract}
        """
    )
    assert ex.state is State.SUCCESS
    order = testplugin.CALLS["record"]
    assert order[0] == "extract"
    assert order[-1] == "load"
    assert set(order[1:3]) == {"clean", "enrich"}


async def test_loop_until_stops_when_the_condition_holds(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: loop
        namespace: t
        tasks:
          - id: until
            type: io.kestra.plugin.core.flow.LoopUntil
            condition: "{{ outputs.count.value >= 3 }}"
            checkFrequency:
              interval: PT0.01S
              maxIterations: 10
            tasks:
              - id: count
                type: test.Flaky
                key: loop
                failures: 0
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert len(testplugin.CALLS["loop"]) == 3


async def test_loop_until_fails_at_max_iterations_with_fail_on_max_reached(
    harness: Harness,
) -> None:
    ex = await harness.run(
        """
        id: loop
        namespace: t
        tasks:
          - id: until
            type: io.kestra.plugin.core.flow.LoopUntil
            condition: "{{ false }}"
            checkFrequency: {interval: PT0.001S, maxIterations: 4}
            failOnMaxReached: true
            tasks:
              - {id: rec, type: test.Record}
        """
    )
    assert ex.state is State.FAILED
    assert len(testplugin.CALLS["record"]) == 4
    until = runs(ex, "until")[0]
    assert until.error == "condition still false after 4 iteration(s): maxIterations (4) reached"


async def test_loop_until_ends_in_success_at_max_iterations_by_default(harness: Harness) -> None:
    # Kestra's LoopUntil: failOnMaxReached is false unless set.
    ex = await harness.run(
        """
        id: loop
        namespace: t
        tasks:
          - id: until
            type: io.kestra.plugin.core.flow.LoopUntil
            condition: "{{ false }}"
            checkFrequency: {interval: PT0.001S, maxIterations: 3}
            tasks:
              - {id: rec, type: test.Record}
        """
    )
    assert ex.state is State.SUCCESS
    assert len(testplugin.CALLS["record"]) == 3
    assert runs(ex, "until")[0].outputs == {"iterationCount": 3}


async def test_allow_failure_turns_failure_into_warning(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: allow
        namespace: t
        tasks:
          - id: tolerant
            type: io.kestra.plugin.core.flow.AllowFailure
            tasks:
              - {id: bad, type: plait.core.Fail}
          - id: flag
            type: test.Boom
            allowFailure: true
          - id: after
            type: test.Record
        """
    )
    assert ex.state is State.WARNING
    assert state_of(ex, "tolerant") == "WARNING"
    assert state_of(ex, "flag") == "WARNING"
    assert state_of(ex, "after") == "SUCCESS"


async def test_working_directory_is_shared_by_its_tasks(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: wd
        namespace: t
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - {id: write, type: test.WriteFile, name: data.txt, content: hello}
              - {id: read, type: test.ReadFile, name: data.txt}
          - id: elsewhere
            type: test.WriteFile
            name: other.txt
            content: x
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "read")[0].outputs["value"] == "hello"
    shared = runs(ex, "write")[0].outputs["value"]
    assert runs(ex, "elsewhere")[0].outputs["value"] != shared


async def test_state_machine_goes_forward_and_back(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: order
        namespace: t
        tasks:
          - id: order
            type: plait.core.StateMachine
            initial: Pending
            finals: [Shipped]
            states:
              Pending:
                tasks:
                  - {id: check, type: test.Flaky, key: stock, failures: 0}
                transitions:
                  - to: Processing
              Processing:
                tasks:
                  - {id: pack, type: test.Record, value: pack}
                transitions:
                  # the first time round the parcel goes back to Pending
                  - when: "{{ outputs.check.value < 2 }}"
                    to: Pending
                  - to: Shipped
              Shipped:
                tasks:
                  - {id: ship, type: test.Record, value: ship}
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    machine = runs(ex, "order")[0]
    path = [(t["from"], t["to"]) for t in machine.outputs["transitions"]]
    assert path == [
        ("Pending", "Processing"),
        ("Processing", "Pending"),
        ("Pending", "Processing"),
        ("Processing", "Shipped"),
    ]
    assert machine.outputs["state"] == "Shipped"
    assert testplugin.CALLS["record"] == ["pack", "pack", "ship"]


async def test_state_machine_max_transitions_guard(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: pingpong
        namespace: t
        tasks:
          - id: m
            type: plait.core.StateMachine
            initial: Ping
            finals: [Done]
            maxTransitions: 5
            states:
              Ping: {transitions: [{to: Pong}]}
              Pong: {transitions: [{to: Ping}]}
              Done: {}
        """
    )
    assert ex.state is State.FAILED
    assert "5" in (runs(ex, "m")[0].error or "")


async def test_labels_task_sets_execution_labels(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: labels
        namespace: t
        labels: {team: data}
        tasks:
          - id: l
            type: io.kestra.plugin.core.execution.Labels
            labels:
              customer: "{{ 'acme' | upper }}"
        """
    )
    assert ex.state is State.SUCCESS
    stored = await harness.reload(ex)
    assert stored.labels == {"team": "data", "customer": "ACME"}


async def test_blocking_code_runs_in_a_thread(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: blocking
        namespace: t
        tasks:
          - {id: b, type: test.Blocking}
        """
    )
    assert ex.state is State.SUCCESS
    assert runs(ex, "b")[0].outputs["value"] != "MainThread"


async def test_disabled_task_is_skipped_entirely(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: disabled
        namespace: t
        tasks:
          - {id: off, type: test.Record, disabled: true}
          - {id: on, type: test.Record}
        """
    )
    assert [r.task_id for r in ex.task_runs] == ["on"]


async def test_nested_for_each_outputs_are_keyed_outer_then_inner(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: nested_outputs
        namespace: t
        tasks:
          - id: outer
            type: io.kestra.plugin.core.flow.ForEach
            values: ["a", "b"]
            tasks:
              - id: inner
                type: io.kestra.plugin.core.flow.ForEach
                values: [1, 2]
                tasks:
                  - id: leaf
                    type: plait.core.Return
                    format: "{{ parents[0].taskrun.value }}{{ taskrun.value }}"
          - id: pick
            type: plait.core.Return
            format: "{{ outputs.leaf['a']['2'].value }},{{ outputs.leaf['b']['1'].value }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "pick")[0].outputs == {"value": "a2,b1"}


async def test_allow_failure_on_a_flowable_task(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: allow_flowable
        namespace: t
        tasks:
          - id: group
            type: plait.core.Sequential
            allowFailure: true
            tasks:
              - {id: bad, type: plait.core.Fail}
          - id: loop
            type: plait.core.ForEach
            values: "not a list"
            allowFailure: true
            tasks:
              - {id: never, type: test.Record}
          - {id: after, type: test.Record}
        """
    )
    assert ex.state is State.WARNING, ex.error
    assert state_of(ex, "group") == "WARNING"
    assert state_of(ex, "loop") == "WARNING"
    assert state_of(ex, "after") == "SUCCESS"


async def test_plugin_template_extensions_validate_and_render(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: ext
        namespace: t
        tasks:
          - id: r
            type: plait.core.Return
            format: "{{ 'hello' | rot13 }} {{ shout('hi') }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "r")[0].outputs == {"value": "uryyb HI!"}


async def test_working_dir_template_variable(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: wdvar
        namespace: t
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - {id: write, type: test.WriteFile, name: a.txt, content: x}
              - {id: where, type: plait.core.Return, format: "{{ workingDir }}"}
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "where")[0].outputs["value"] == runs(ex, "write")[0].outputs["value"]


async def test_set_and_unset_variables_change_vars_for_later_tasks(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: variables
        namespace: t
        variables:
          name: World
          cfg: {a: 1, b: {c: 2}}
        tasks:
          - id: set
            type: io.kestra.plugin.core.execution.SetVariables
            variables:
              message: "{{ 'Hel' ~ 'lo' }}"
              cfg: {b: {d: 3}}
          - {id: seen, type: test.Record, value: "{{ vars.message }} {{ vars.name }}"}
          - {id: merged, type: test.Record, value: "{{ vars.cfg }}"}
          - id: unset
            type: io.kestra.plugin.core.execution.UnsetVariables
            variables: [message, cfg.b.c]
          - {id: after, type: test.Record, value: "{{ vars.message ?? 'gone' }} {{ vars.cfg }}"}
          - {id: lenient, type: plait.core.UnsetVariables, variables: [nope], ignoreMissing: true}
          - {id: strict, type: plait.core.UnsetVariables, variables: [nope], allowFailure: true}
          - id: keep
            type: plait.core.SetVariables
            overwrite: false
            variables: {name: again, fresh: 1}
            allowFailure: true
          - {id: final, type: test.Record, value: "{{ vars.name }} {{ vars.fresh ?? 'unset' }}"}
        """
    )
    assert ex.state is State.WARNING
    assert testplugin.CALLS["record"] == [
        "Hello World",
        {"a": 1, "b": {"c": 2, "d": 3}},
        'gone {"a":1,"b":{"d":3}}',  # a map in text renders as JSON, as in Kestra
        "World unset",  # a refused SetVariables changes nothing
    ]
    errors = {r.task_id: r.error for r in ex.task_runs if r.error}
    assert errors == {
        "strict": "variable 'nope' is not set",
        "keep": "overwrite is false and these variables already exist: name",
    }
    stored = await harness.reload(ex)
    assert stored.variables == {"name": "World", "cfg": {"a": 1, "b": {"d": 3}}}


async def test_wait_for_repeats_while_the_condition_holds(harness: Harness) -> None:
    # Kestra's own example: the task reads the loop's iterationCount while it runs.
    ex = await harness.run(
        """
        id: wait
        namespace: t
        tasks:
          - id: waitFor
            type: io.kestra.plugin.core.flow.WaitFor
            condition: "{{ outputs.return.value != '4' }}"
            checkFrequency: {interval: PT0.001S}
            tasks:
              - id: return
                type: io.kestra.plugin.core.debug.Return
                format: "{{ outputs.waitFor.iterationCount }}"
          - id: capped
            type: plait.core.WaitFor
            condition: "{{ true }}"
            checkFrequency: {interval: PT0.001S, maxIterations: 3}
            tasks:
              - {id: again, type: test.Record, value: again}
          - id: strict
            type: plait.core.WaitFor
            condition: "{{ true }}"
            failOnMaxReached: true
            allowFailure: true
            checkFrequency: {interval: PT0.001S, maxIterations: 2}
            tasks:
              - {id: once_more, type: test.Record, value: strict}
        """
    )
    assert ex.state is State.WARNING
    assert [r.outputs["value"] for r in runs(ex, "return")] == ["1", "2", "3", "4"]
    assert runs(ex, "waitFor")[0].outputs == {"iterationCount": 4}
    # reaching maxIterations ends a WaitFor in SUCCESS unless failOnMaxReached
    assert state_of(ex, "capped") == "SUCCESS"
    assert testplugin.CALLS["record"] == ["again"] * 3 + ["strict"] * 2
    strict = runs(ex, "strict")[0]
    assert strict.state is State.WARNING
    assert strict.error == "condition still true after 2 iteration(s): maxIterations (2) reached"


async def test_each_sequential_and_each_parallel_take_kestras_names(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: each
        namespace: t
        tasks:
          - id: seq
            type: io.kestra.plugin.core.flow.EachSequential
            value: '["a", "b"]'
            tasks:
              - {id: s, type: test.Record, value: "{{ taskrun.value }}"}
          - id: par
            type: io.kestra.plugin.core.flow.EachParallel
            value: [1, 2, 3]
            tasks:
              - {id: p, type: test.Probe, seconds: 0.05}
        """
    )
    assert ex.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["a", "b"]
    assert testplugin.GAUGE["max"] == 3  # concurrent defaults to 0: all at once
    testplugin.reset()
    ex = await harness.run(
        """
        id: limited
        namespace: t
        tasks:
          - id: par
            type: io.kestra.plugin.core.flow.EachParallel
            value: [1, 2, 3]
            concurrent: 1
            tasks:
              - {id: p, type: test.Probe, seconds: 0.02}
        """
    )
    assert ex.state is State.SUCCESS
    assert testplugin.GAUGE["max"] == 1
    with pytest.raises(ValidationError, match="give values or value, not both"):
        await harness.deploy(
            """
            id: both
            namespace: t
            tasks:
              - id: seq
                type: io.kestra.plugin.core.flow.EachSequential
                value: [1]
                values: [2]
                tasks:
                  - {id: s, type: plait.core.Log, message: x}
            """
        )
