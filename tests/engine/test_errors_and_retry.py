"""errors / finally branches, allowFailure, retries (exact delays), timeouts, template errors."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from plait.engine._executor import Executor
from plait.engine._retry import delay, next_attempt_at
from plait.flows import ConstantRetry, ExponentialRetry, RandomRetry, State, load_flow
from plait.plugins import PluginHost
from plait.records import Execution
from plait.templating import masked_view

from . import testplugin
from .conftest import SECRETS, Harness, runs, state_of


async def test_flow_errors_run_on_failure_and_finally_always(harness: Harness) -> None:
    source = """
        id: handlers
        namespace: t
        inputs:
          - {id: fail, type: BOOLEAN}
        tasks:
          - id: work
            type: plait.core.Fail
            condition: "{{ inputs.fail }}"
          - id: next
            type: test.Record
            value: next
        errors:
          - {id: alert, type: test.Record, value: alert}
        finally:
          - {id: cleanup, type: test.Record, value: cleanup}
        """
    ex = await harness.run(source, {"fail": True})
    assert ex.state is State.FAILED
    assert testplugin.CALLS["record"] == ["alert", "cleanup"]
    testplugin.reset()
    ex = await harness.run(source, {"fail": False})
    assert ex.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["next", "cleanup"]


async def test_task_level_errors_branch(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: local
        namespace: t
        tasks:
          - id: group
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - {id: bad, type: test.Boom}
            errors:
              - {id: handle, type: test.Record, value: "{{ 'handled' }}"}
        errors:
          - {id: flow_alert, type: test.Record, value: flow}
        """
    )
    assert ex.state is State.FAILED
    assert testplugin.CALLS["record"] == ["handled", "flow"]
    # an unexpected exception keeps its type in the message and its traceback in the logs
    assert runs(ex, "bad")[0].error == "RuntimeError: kaboom"
    logs = await harness.repo.logs(ex.id)
    assert any("Traceback" in r.message and r.task_id == "bad" for r in logs)


async def test_failing_finally_fails_a_successful_execution(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: fin
        namespace: t
        tasks:
          - {id: ok, type: test.Record}
        finally:
          - {id: broken, type: plait.core.Fail, errorMessage: cleanup broke}
        """
    )
    assert ex.state is State.FAILED
    assert "cleanup broke" in (ex.error or "")


async def test_retry_until_success_keeps_every_attempt(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: retry
        namespace: t
        tasks:
          - id: flaky
            type: test.Flaky
            key: f
            failures: 2
            retry:
              type: constant
              interval: PT0.01S
              maxAttempts: 5
        """
    )
    assert ex.state is State.SUCCESS
    run = runs(ex, "flaky")[0]
    assert [a.state for a in run.attempts] == [State.FAILED, State.FAILED, State.SUCCESS]
    assert [a.error for a in run.attempts][:2] == ["flaky failure 1", "flaky failure 2"]
    assert testplugin.CALLS["f"] == [1, 2, 3]  # ctx.attempt seen by the task
    assert State.RETRYING in [t.state for t in run.history]
    for before, after in zip(run.attempts, run.attempts[1:], strict=False):
        assert after.started
        assert before.ended
        assert after.started - before.ended >= timedelta(seconds=0.01)


async def test_retry_exhausted_fails_and_warning_on_retry(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: retry
        namespace: t
        tasks:
          - id: flaky
            type: test.Flaky
            key: f
            failures: 5
            retry: {type: constant, interval: PT0.001S, maxAttempts: 3}
        """
    )
    assert ex.state is State.FAILED
    assert len(runs(ex, "flaky")[0].attempts) == 3
    testplugin.reset()
    ex = await harness.run(
        """
        id: retry2
        namespace: t
        tasks:
          - id: flaky
            type: test.Flaky
            key: f
            failures: 1
            retry: {type: constant, interval: PT0.001S, maxAttempts: 3, warningOnRetry: true}
        """
    )
    assert ex.state is State.WARNING
    assert state_of(ex, "flaky") == "WARNING"


def _rng() -> random.Random:
    return random.Random(1234)


def test_constant_delays_are_constant() -> None:
    policy = ConstantRetry(type="constant", interval=timedelta(seconds=3), maxAttempts=10)
    assert [delay(policy, n, _rng()).total_seconds() for n in range(1, 6)] == [3.0] * 5


def test_exponential_delays_double_and_cap() -> None:
    policy = ExponentialRetry.model_validate(
        {"type": "exponential", "interval": "PT1S", "maxInterval": "PT10S", "maxAttempts": 9}
    )
    got = [delay(policy, n, _rng()).total_seconds() for n in range(1, 7)]
    assert got == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    factor3 = ExponentialRetry.model_validate(
        {
            "type": "exponential",
            "interval": "PT0.5S",
            "maxInterval": "PT1H",
            "delayFactor": 3,
            "maxAttempts": 9,
        }
    )
    got = [delay(factor3, n, _rng()).total_seconds() for n in range(1, 5)]
    assert got == [0.5, 1.5, 4.5, 13.5]


def test_exponential_jitter_spreads_within_bounds() -> None:
    policy = ExponentialRetry.model_validate(
        {
            "type": "exponential",
            "interval": "PT10S",
            "maxInterval": "PT1000S",
            "jitter": 0.2,
            "maxAttempts": 9,
        }
    )
    rng = _rng()
    expected_rng = _rng()
    for n in range(1, 6):
        base = 10.0 * 2 ** (n - 1)
        expected = base * expected_rng.uniform(0.8, 1.2)
        got = delay(policy, n, rng).total_seconds()
        assert got == pytest.approx(expected)
        assert 0.8 * base <= got <= 1.2 * base
    # jitter really varies the delays (a jitter setting that does nothing fails here)
    samples = {delay(policy, 1, rng).total_seconds() for _ in range(20)}
    assert len(samples) == 20
    assert min(samples) < 9.5
    assert max(samples) > 10.5


def test_random_delays_stay_in_their_range() -> None:
    policy = RandomRetry.model_validate(
        {"type": "random", "minInterval": "PT1S", "maxInterval": "PT3S", "maxAttempts": 9}
    )
    rng, expected = _rng(), _rng()
    for n in range(1, 20):
        got = delay(policy, n, rng).total_seconds()
        assert got == pytest.approx(expected.uniform(1, 3))
        assert 1 <= got <= 3


def test_max_attempts_and_max_duration_stop_retrying() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    policy = ConstantRetry.model_validate(
        {"type": "constant", "interval": "PT10S", "maxAttempts": 3}
    )
    rng = _rng()
    at = next_attempt_at(policy, attempts_made=1, first_started=start, now=start, rng=rng)
    assert at == start + timedelta(seconds=10)
    assert next_attempt_at(policy, attempts_made=3, first_started=start, now=start, rng=rng) is None
    bounded = ConstantRetry.model_validate(
        {"type": "constant", "interval": "PT10S", "maxDuration": "PT25S"}
    )
    now = start + timedelta(seconds=10)
    at = next_attempt_at(bounded, attempts_made=2, first_started=start, now=now, rng=rng)
    assert at == start + timedelta(seconds=20)
    now = start + timedelta(seconds=20)
    assert next_attempt_at(bounded, attempts_made=3, first_started=start, now=now, rng=rng) is None


async def test_executor_schedules_the_exact_exponential_sequence(host: PluginHost) -> None:
    """The executor with an injected clock: each failure schedules the next attempt exactly."""
    flow = load_flow(
        """
id: x
namespace: t
tasks:
  - id: flaky
    type: test.Flaky
    key: k
    retry: {type: exponential, interval: PT2S, maxInterval: PT60S, maxAttempts: 5}
""",
        registry=host.registry,
    )
    execution = Execution(namespace="t", flow_id="x", flow_revision=1)

    async def render(context: dict[str, object], value: object) -> object:
        return value

    executor = Executor(flow, execution, render=render)
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    step = await executor.step(clock)
    (run,) = step.start
    waits = []
    for _ in range(4):
        clock += timedelta(seconds=1)  # the attempt took one second
        executor.complete(run.id, now=clock, error="boom")
        assert run.state is State.RETRYING
        assert run.retry_at is not None
        waits.append((run.retry_at - clock).total_seconds())
        early = await executor.step(run.retry_at - timedelta(milliseconds=1))
        assert early.start == []
        assert early.wake_at == run.retry_at
        clock = run.retry_at
        step = await executor.step(clock)
        assert step.start == [run]
    assert waits == [2.0, 4.0, 8.0, 16.0]
    executor.complete(run.id, now=clock, error="boom")
    assert run.state is State.FAILED
    assert len(run.attempts) == 5


async def test_task_timeout_cancels_and_fails_clearly(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: slow
        namespace: t
        tasks:
          - id: wait
            type: test.Gate
            name: never
            timeout: PT0.1S
        """
    )
    assert ex.state is State.FAILED
    assert runs(ex, "wait")[0].error == "timed out after PT0.1S"
    assert testplugin.CALLS["gate:never"] == ["started", "cancelled"]


async def test_execution_timeout_kills_the_execution(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: slow
        namespace: t
        timeout: PT0.2S
        tasks:
          - {id: wait, type: test.Gate, name: never}
          - {id: after, type: test.Record}
        """
    )
    assert ex.state is State.KILLED
    assert "timed out after PT0.2S" in (ex.error or "")
    assert testplugin.CALLS["gate:never"] == ["started", "cancelled"]
    assert runs(ex, "after") == []


async def test_undefined_name_fails_the_task_naming_property_and_expression(
    harness: Harness,
) -> None:
    ex = await harness.run(
        """
        id: undefined
        namespace: t
        tasks:
          - id: greet
            type: plait.core.Log
            message: "Hello {{ inputs.nobody }}"
        """
    )
    assert ex.state is State.FAILED
    error = runs(ex, "greet")[0].error or ""
    assert "task 'greet'" in error
    assert "property 'message'" in error
    assert "{{ inputs.nobody }}" in error


async def test_property_of_the_wrong_type_after_rendering(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: wrongtype
        namespace: t
        tasks:
          - id: nap
            type: plait.core.Sleep
            duration: "{{ 'soon' }}"
        """
    )
    assert ex.state is State.FAILED
    assert "property 'duration'" in (runs(ex, "nap")[0].error or "")


async def test_secrets_are_masked_in_logs_outputs_and_derived_values(harness: Harness) -> None:
    token = SECRETS["API_TOKEN"]
    ex = await harness.run(
        """
        id: secrets
        namespace: t
        tasks:
          - {id: use, type: test.UseSecret, name: API_TOKEN}
          - id: header
            type: plait.core.Return
            format: "Bearer {{ secret('API_TOKEN') | upper }}"
          - id: log
            type: plait.core.Log
            message: "header is {{ outputs.header.value }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    stored = await harness.reload(ex)
    logs = await harness.repo.logs(ex.id)
    text = stored.model_dump_json() + "".join(r.message for r in logs)
    # Upper-cased, the header matches none of the token's masked forms: only knowing it was
    # derived from the secret keeps it out of the log and the database.
    header = f"Bearer {token.upper()}"
    for form in (token, token.upper(), header):
        assert form not in text
    # The message itself is derived from the secret (it printed the header): masked whole.
    assert [r.message for r in logs if r.task_id == "log"] == ["******"]
    assert set(runs(stored, "header")[0].outputs["value"]) == {"$secret", "$key"}
    assert runs(ex, "header")[0].outputs["value"] == header  # intact for later tasks


async def test_unknown_secret_fails_with_a_clear_message(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: nosecret
        namespace: t
        tasks:
          - id: r
            type: plait.core.Return
            format: "{{ secret('MISSING') }}"
        """
    )
    assert ex.state is State.FAILED
    expected = (
        "task 'r', property 'format': secret 'MISSING' not found for namespace 't' "
        "(looked in: environment) in `{{ secret('MISSING') }}`"
    )
    assert runs(ex, "r")[0].error == expected
    assert ex.error == f"task 'r' failed: {expected}"
    assert [r.message for r in await harness.repo.logs(ex.id)] == [expected]


async def test_text_properties_render_kestra_style(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: text
        namespace: t
        inputs:
          - {id: n, type: INT, defaults: 3}
        tasks:
          - id: log
            type: plait.core.Log
            message: "{{ inputs.n }}"
          - id: flag
            type: plait.core.Return
            format: "{{ inputs.n > 2 }}"
          - id: data
            type: plait.core.Return
            format: "{{ {'a': [1, 2]} }}"
          - id: nap
            type: plait.core.Sleep
            duration: "{{ 'PT0.001S' }}"
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    assert runs(ex, "flag")[0].outputs == {"value": "true"}
    assert runs(ex, "data")[0].outputs == {"value": '{"a":[1,2]}'}
    logs = await harness.repo.logs(ex.id)
    assert [r.message for r in logs if r.task_id == "log"] == ["3"]


async def test_secret_inputs_are_sealed_at_rest_and_masked(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: secret_input
        namespace: t
        inputs:
          - {id: password, type: SECRET}
        tasks:
          - id: use
            type: plait.core.Log
            message: "connecting with {{ inputs.password }}"
          - id: ret
            type: test.Record
            value: "{{ inputs.password }}"
        """,
        {"password": "hunter2-very-secret"},
    )
    assert ex.state is State.SUCCESS, ex.error
    assert testplugin.CALLS["record"] == ["hunter2-very-secret"]  # the task saw the real value
    stored = await harness.reload(ex)
    dumped = stored.model_dump_json() + "".join(r.message for r in await harness.repo.logs(ex.id))
    assert "hunter2-very-secret" not in dumped
    assert set(stored.inputs["password"]) == {"$sealed", "$key"}
    # a replay re-seals the value for the new execution and still works
    testplugin.reset()
    replay = await harness.runner.replay(ex.id)
    assert replay.state is State.SUCCESS
    assert testplugin.CALLS["record"] == ["hunter2-very-secret"]
    assert replay.inputs["password"] != stored.inputs["password"]


async def test_a_secret_is_masked_on_every_surface(harness: Harness) -> None:
    token = SECRETS["API_TOKEN"]
    ex = await harness.run(
        """
        id: surfaces
        namespace: t
        tasks:
          - id: log
            type: plait.core.Log
            message: "{{ secret('API_TOKEN') }}"
          - id: derived
            type: plait.core.Return
            format: "{{ secret('API_TOKEN') | replace('-', '_') | upper }}"
          - id: sliced
            type: plait.core.Return
            format: "{{ secret('API_TOKEN')[0:9] }}"
          - id: label
            type: plait.core.Labels
            labels:
              leaked: "{{ secret('API_TOKEN') }}"
          - id: echo
            type: test.UseSecret
            name: API_TOKEN
          - id: boom
            type: plait.core.Fail
            errorMessage: "cannot connect with {{ secret('API_TOKEN') }}"
            allowFailure: true
        outputs:
          - id: out
            type: STRING
            value: "{{ outputs.echo.value }}"
        """
    )
    assert ex.state is State.WARNING, ex.error
    stored = await harness.reload(ex)
    assert set(stored.outputs["out"]) == {"$secret", "$key"}  # sealed at rest
    assert masked_view(stored.outputs) == {"out": "******"}
    logs = await harness.repo.logs(ex.id)
    surfaces = [
        stored.model_dump_json(),  # task outputs, execution outputs, labels, errors
        "".join(r.message for r in logs),  # log lines, error logs
        ex.error or "",
    ]
    forms = [token, token.upper(), token.replace("-", "_").upper(), token[0:9]]
    for surface in surfaces:
        for form in forms:
            assert form not in surface, (form, surface[:200])
    assert "******" in stored.labels["leaked"]
    assert "******" in (runs(stored, "boom")[0].error or "")


async def test_only_values_derived_from_a_secret_are_masked(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: maps
        namespace: t
        tasks:
          - id: data
            type: plait.core.OutputValues
            values:
              header: "Bearer {{ secret('API_TOKEN') }}"
              mode: production
              user: ada
        """
    )
    assert ex.state is State.SUCCESS, ex.error
    token = SECRETS["API_TOKEN"]
    values = runs(ex, "data")[0].outputs["values"]
    assert values == {"header": f"Bearer {token}", "mode": "production", "user": "ada"}
    stored = runs(await harness.reload(ex), "data")[0].outputs["values"]
    assert set(stored["header"]) == {"$secret", "$key"}
    assert (stored["mode"], stored["user"]) == ("production", "ada")


async def test_timeout_on_a_flowable_task_kills_its_children(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: slow_group
        namespace: t
        tasks:
          - id: group
            type: plait.core.Parallel
            timeout: PT0.2S
            tasks:
              - {id: stuck, type: test.Gate, name: forever}
              - {id: quick, type: test.Record, value: quick}
          - {id: after, type: test.Record, value: after}
        errors:
          - {id: handle, type: test.Record, value: handled}
        """
    )
    assert ex.state is State.FAILED
    group = runs(ex, "group")[0]
    assert group.error == "timed out after PT0.2S"
    assert state_of(ex, "stuck") == "KILLED"
    assert testplugin.CALLS["gate:forever"] == ["started", "cancelled"]
    assert testplugin.CALLS["record"] == ["quick", "handled"]


async def test_allow_warning_turns_a_warning_into_success(harness: Harness) -> None:
    await harness.deploy(
        """
        id: failing_child
        namespace: t
        tasks:
          - {id: boom, type: plait.core.Fail}
        """
    )
    ex = await harness.run(
        """
        id: tolerant
        namespace: t
        tasks:
          - id: retried
            type: test.Flaky
            key: f
            allowWarning: true
            retry: {type: constant, interval: PT0.001S, maxAttempts: 2, warningOnRetry: true}
          - {id: tolerated, type: plait.core.Fail, allowFailure: true, allowWarning: true}
          - {id: warned, type: plait.core.Fail, allowFailure: true}
          - id: group
            type: plait.core.AllowFailure
            allowWarning: true
            tasks:
              - {id: inner, type: plait.core.Fail}
          - id: child
            type: plait.core.Subflow
            namespace: t
            flowId: failing_child
            allowFailure: true
        """
    )
    assert state_of(ex, "retried") == "SUCCESS"
    assert state_of(ex, "tolerated") == "SUCCESS"
    assert state_of(ex, "warned") == "WARNING"
    assert state_of(ex, "inner") == "FAILED"
    assert state_of(ex, "group") == "SUCCESS"
    assert state_of(ex, "child") == "WARNING"  # a Subflow's allowFailure is honoured too
    assert ex.state is State.WARNING  # `warned` and `child` are still warnings


async def test_log_level_keeps_only_the_lines_at_or_above_it(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: quiet
        namespace: t
        tasks:
          - id: chatty
            type: plait.core.Sequential
            tasks:
              - {id: trace, type: plait.core.Log, level: TRACE, message: t, logLevel: WARN}
              - {id: info, type: plait.core.Log, level: INFO, message: i, logLevel: WARN}
              - {id: warn, type: plait.core.Log, level: WARN, message: w, logLevel: WARN}
              - {id: error, type: plait.core.Log, level: ERROR, message: e, logLevel: WARN}
              - {id: default, type: plait.core.Log, level: DEBUG, message: d}
        """
    )
    assert ex.state is State.SUCCESS
    logs = await harness.repo.logs(ex.id)
    assert [(r.task_id, r.message) for r in logs] == [
        ("warn", "w"),
        ("error", "e"),
        ("default", "d"),
    ]
