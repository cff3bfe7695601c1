"""plait_sdk.testing: the harness a plugin's tests use, checked against the real engine.

The parity tests run the same task through the core's Runner and through the harness and
compare what each shows (outputs, masked logs, rendered properties): the harness's promise is
"what a real run would do", so that is what is tested.
"""

from __future__ import annotations

import base64
import json
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.plugins import PluginHost
from plait.storage import SqlRepository
from plait_sdk import (
    ExecutionRequest,
    Output,
    PollingTrigger,
    RegisterTask,
    RunContext,
    Task,
    TaskFailure,
    UserError,
    hookimpl,
)
from plait_sdk.testing import (
    FakeClock,
    HarnessContext,
    MemoryKeyValueStore,
    TaskHarness,
    TriggerHarness,
)

PLAIT_PLUGIN_API = ">=1.0,<2"
TOKEN = "tok-Very-Secret-42"


class GreetOutput(Output):
    greeting: str
    count: int


class Greet(Task):
    """Greets; logs its token in the forms a careless plugin might."""

    type_name: ClassVar[str] = "tests.harness.Greet"
    name: str
    count: int = 1
    header: str | None = None
    fail: bool = False

    async def run(self, ctx: RunContext) -> GreetOutput:
        token = await ctx.secret("API_TOKEN")
        ctx.log.info("token %s", token)
        ctx.log.info("b64 %s", base64.b64encode(f"user:{token}".encode()).decode())
        ctx.log.info('json {"t": "%s"}', token)
        ctx.log.info("header %s", self.header)
        ctx.log.warning("rendered %s", await ctx.render("{{ inputs.who }}-{{ flow.id }}"))
        ctx.metric("greetings", self.count, tags={"who": self.name})
        if self.fail:
            raise TaskFailure(f"refused with {token}")
        return GreetOutput(greeting=f"hello {self.name}", count=self.count)


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    register(Greet)


PROPERTIES = {
    "name": "{{ inputs.who | upper }}",
    "count": "{{ inputs.n * 2 }}",
    "header": "Bearer {{ secret('API_TOKEN') }}",
}


# -- parity with the real engine ------------------------------------------------------------------


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[Runner]:
    host = PluginHost.discover(entry_points=False, extra=[sys.modules[__name__]])
    assert host.healthy, [r.errors for r in host.records]
    repo = SqlRepository.sqlite(tmp_path / "plait.db")
    await repo.open()

    async def secrets(namespace: str, name: str) -> str:
        return {"API_TOKEN": TOKEN}[name]

    try:
        yield Runner(repo, host, LocalStorageBackend(tmp_path / "s"), secrets=secrets)
    finally:
        await host.shutdown()
        await repo.close()


async def real_run(runner: Runner, properties: dict[str, Any]) -> tuple[Any, list[str]]:
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in properties.items())
    source = (
        textwrap.dedent(
            """\
        id: flow
        namespace: tests
        inputs:
          - {id: who, type: STRING}
          - {id: n, type: INT}
        tasks:
          - id: task
            type: tests.harness.Greet
        """
        )
        + body
        + "\n"
    )
    flow, revision = await runner.deploy(source, file="flow.yaml")
    execution = await runner.run(flow, revision, {"who": "ann", "n": 2})
    logs = [r.message for r in await runner.repo.logs(execution.id) if r.task_id == "task"]
    return execution, logs


async def test_a_run_in_the_harness_shows_what_a_real_run_shows(runner: Runner) -> None:
    execution, real_logs = await real_run(runner, PROPERTIES)
    assert execution.state.value == "SUCCESS", execution.error

    harness = TaskHarness(inputs={"who": "ann", "n": 2}, secrets={"API_TOKEN": TOKEN})
    result = await harness.run(Greet, PROPERTIES)

    assert result.outputs == execution.task_runs[0].outputs == {"greeting": "hello ANN", "count": 4}
    assert result.state == "SUCCESS"
    assert [line.message for line in result.logs] == real_logs
    assert TOKEN not in result.log_text
    assert result.logs[3].message == "header ******"  # derived from secret(): masked whole
    assert result.metrics[0].value == 4.0
    assert dict(result.metrics[0].tags) == {"who": "ANN"}


async def test_a_failure_is_masked_as_in_a_real_run(runner: Runner) -> None:
    execution, real_logs = await real_run(runner, {**PROPERTIES, "fail": True})
    assert execution.state.value == "FAILED"

    harness = TaskHarness(inputs={"who": "ann", "n": 2}, secrets={"API_TOKEN": TOKEN})
    result = await harness.run(Greet, {**PROPERTIES, "fail": True})

    assert result.state == "FAILED"
    assert result.error == "refused with ******"
    assert isinstance(result.exception, TaskFailure)
    assert [line.message for line in result.logs] == real_logs
    with pytest.raises(AssertionError, match="the task failed: refused with"):
        _ = result.outputs


async def test_bad_properties_fail_with_the_engines_message(runner: Runner) -> None:
    execution, _ = await real_run(runner, {"name": "x", "count": "{{ nope }}"})
    harness = TaskHarness(secrets={"API_TOKEN": TOKEN})
    result = await harness.run(Greet, {"name": "x", "count": "{{ nope }}"})
    assert result.error == execution.task_runs[0].error if execution.task_runs else execution.error
    assert result.error is not None
    assert "property 'count'" in result.error

    result = await harness.run(Greet, {"name": "x", "count": "many"})
    assert result.error is not None
    assert "task 'task': property 'count'" in result.error
    assert isinstance(result.exception, UserError)


# -- the harness on its own --------------------------------------------------------------------


class Store(Task):
    type_name: ClassVar[str] = "tests.harness.Store"
    source: str
    key: str = "seen"

    async def run(self, ctx: RunContext) -> Output:
        data = await ctx.storage.read_bytes(self.source)
        uri = await ctx.storage.put("copy.txt", data.upper())
        previous = await ctx.kv.get(self.key)
        await ctx.kv.set(self.key, (previous or 0) + 1, ttl=timedelta(minutes=10))
        return Output.model_validate({"uri": uri, "previous": previous})


async def test_files_kv_and_outputs_flow_between_runs(task_harness: TaskHarness) -> None:
    harness = TaskHarness(files={"in.txt": b"abc"}, kv={"seen": 5})
    first = await harness.run(Store, {"source": "{{ inputs['in.txt'] }}"}, task_id="one")
    assert first.outputs["previous"] == 5
    assert list(first.files.values()) == [b"ABC"]
    # A later task reads the earlier one's output and file, as in a flow.
    second = await harness.run(Store, {"source": "{{ outputs.one.uri }}"}, task_id="two")
    assert second.files == {second.outputs["uri"]: b"ABC"}
    assert second.outputs["previous"] == 6
    assert harness.kv.snapshot() == {"tests": {"seen": 7}}
    # Expiry follows the fake clock.
    harness.clock.advance(timedelta(minutes=11))
    assert await harness.kv.get("seen") is None


async def test_storage_refuses_what_the_core_refuses() -> None:
    harness = TaskHarness()
    other = TaskHarness(files={"x": b"1"})
    ctx = harness.context()
    with pytest.raises(UserError, match="outside this execution"):
        await ctx.storage.read_bytes(other.uri("x"))
    with pytest.raises(UserError, match="bad path segment"):
        await ctx.storage.put("../escape", b"")
    with pytest.raises(UserError, match="does not exist"):
        await ctx.storage.read_bytes(harness.uri("missing"))


async def test_kv_rules() -> None:
    kv = MemoryKeyValueStore("ns", FakeClock())
    await kv.set("a", "1", type="NUMBER")
    assert await kv.get("a") == 1.0
    with pytest.raises(UserError, match="overwrite is false"):
        await kv.set("a", 2, overwrite=False)
    with pytest.raises(UserError, match="invalid KV key"):
        await kv.set("a b", 1)
    await kv.set("b", {"x": (1, 2)}, namespace="other")
    assert await kv.get("b", namespace="other") == {"x": [1, 2]}
    assert await kv.keys() == ["a"]
    assert await kv.delete("a") is True


async def test_templates_see_kv_and_secrets_through_the_context() -> None:
    harness = TaskHarness(kv={"units": "metric"}, secrets={"PW": "pass-word-1"})
    ctx = harness.context()
    assert await ctx.render("{{ kv('units') }}/{{ task.id }}") == "metric/task"
    rendered = await ctx.render({"auth": "{{ secret('PW') }}!"})
    ctx.log.info("auth is %s", rendered["auth"])
    assert ctx.log_text == "auth is ******"
    with pytest.raises(UserError, match="no such key"):
        await ctx.render("{{ kv('nope') }}")


def test_the_fixtures_share_one_clock(
    task_harness: TaskHarness,
    trigger_harness: Callable[..., TriggerHarness],
    fake_clock: FakeClock,
) -> None:
    assert task_harness.clock is fake_clock
    assert trigger_harness(Rows, {"interval": "PT1M"}).clock is fake_clock
    assert isinstance(task_harness.context(), HarnessContext)


# -- triggers -------------------------------------------------------------------------------------


class Rows(PollingTrigger):
    type_name: ClassVar[str] = "tests.harness.Rows"
    fail_times: int = 0

    def model_post_init(self, context: Any) -> None:
        self._polls = 0

    async def evaluate(self, ctx: RunContext) -> ExecutionRequest | None:
        self._polls += 1
        if self._polls <= self.fail_times:
            raise RuntimeError(f"database down ({await ctx.secret('PW')})")
        cursor = await ctx.kv.get("cursor") or 0
        await ctx.kv.set("cursor", cursor + 1)
        ctx.log.info("poll %d at %s", self._polls, ctx.now().isoformat())
        if cursor % 2:
            return None  # every other evaluation finds nothing
        return ExecutionRequest(variables={"cursor": cursor}, dedup_key=f"c{cursor // 4}")


async def test_a_trigger_on_a_fake_clock_keeps_its_state() -> None:
    clock = FakeClock()
    triggers = TriggerHarness(Rows, {"interval": "PT1M"}, clock=clock, secrets={"PW": "pw-123"})
    first = await triggers.evaluate()
    assert first.started
    assert first.request is not None
    assert first.logs[0].message == "poll 1 at 2026-01-01T00:00:00+00:00"
    later = await triggers.advance(timedelta(minutes=10))
    # One evaluation per interval, on the fake clock; the trigger object and the KV persist.
    assert [e.at.minute for e in later] == list(range(1, 11))
    assert [e.logs[0].message.split()[1] for e in later] == [str(n) for n in range(2, 12)]
    assert await triggers.kv.get("cursor") == 11
    # Cursors 0,2,4,6,8,10 give requests; dedup keys c0,c0,c1,c1,c2,c2: three executions.
    assert [r.variables["cursor"] for r in triggers.executions] == [0, 4, 8]
    assert clock.now().minute == 10


async def test_a_failing_trigger_backs_off_and_masks_its_error() -> None:
    triggers = TriggerHarness(Rows, {"interval": "PT1M", "failTimes": 2}, secrets={"PW": "pw-123"})
    evaluations = await triggers.advance(timedelta(minutes=10))
    assert [e.at.minute for e in evaluations] == [0, 2, 6, 7, 8, 9, 10]
    assert evaluations[0].error == "RuntimeError: database down (******)"
    assert triggers.last_error is None
