"""Run one task in-process, as the engine would, and get back what it did."""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from plait_sdk._context import Effect
from plait_sdk._errors import TaskFailure, UserError
from plait_sdk._masking import Masker
from plait_sdk._task import Output, Task
from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._context import CapturedLog, HarnessContext, LogLine, Metric
from plait_sdk.testing._kv import MemoryKeyValueStore
from plait_sdk.testing._nsfiles import MemoryNamespaceFiles
from plait_sdk.testing._render import load_renderer, render_value, text_properties
from plait_sdk.testing._storage import FileStore, HarnessStorage, check_key, execution_prefix


@dataclass
class TaskResult:
    """What one task run did: its outputs or error, logs (masked), metrics and files.

    Reading :attr:`outputs` or :attr:`output` of a failed run raises ``AssertionError`` with the
    error, so a test that forgot the task could fail does not pass on an empty result.

    Example::

        result = await harness.run(Request, {"uri": "https://example.com"})
        assert result.outputs["code"] == 200
        assert "******" in result.log_text
    """

    context: HarnessContext
    output_value: Output | None = None
    error: str | None = None
    """The failure as the execution would show it (masked), or ``None`` on success."""
    exception: BaseException | None = None
    """The exception the task raised, unmasked, for ``isinstance`` checks."""
    file_uris: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def state(self) -> str:
        """``SUCCESS`` or ``FAILED``, the task run's state in a real run."""
        return "FAILED" if self.failed else "SUCCESS"

    @property
    def output(self) -> Output | None:
        """The task's typed output model (``None`` for a task without outputs)."""
        self._check()
        return self.output_value

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs as the flow sees them (``outputs.<taskId>.<name>``: camelCase, JSON)."""
        self._check()
        return {} if self.output_value is None else self.output_value.dump()

    @property
    def logs(self) -> list[LogLine]:
        return self.context.logs

    @property
    def log_text(self) -> str:
        return self.context.log_text

    @property
    def metrics(self) -> list[Metric]:
        return self.context.metrics

    @property
    def effects(self) -> list[Effect]:
        """What the task asked of its execution (``SetLabels``...); a real run applies them
        only when the task succeeds."""
        return self.context.effects

    @property
    def files(self) -> dict[str, bytes]:
        """The files the task stored: URI to content (read on each access)."""
        return {uri: self.context.storage.file(uri) for uri in self.file_uris}

    def _check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the task failed: {self.error}") from self.exception


class TaskHarness:
    """Runs tasks in-process with given properties, inputs, secrets, KV values and files.

    A harness stands for one execution of a flow: the task runs it makes share its storage,
    its key-value store, its secrets' masker and the ``outputs`` later tasks see. Properties go
    through what the engine does before ``run``: templates rendered with the core's own engine
    (``{{ inputs.x }}``, ``{{ secret('X') }}``, ``{{ kv('k') }}``, ``{{ outputs.t.y }}``), text
    properties rendered as text, then validated against the task's model.

    Example::

        harness = TaskHarness(
            inputs={"city": "Paris"},
            secrets={"API_TOKEN": "s3cr3t-token"},
            kv={"units": "metric"},
            files={"cities.csv": b"name\\nParis\\n"},
        )
        result = await harness.run(
            Weather,
            {"city": "{{ inputs.city }}", "token": "{{ secret('API_TOKEN') }}"},
        )
        assert result.outputs["temperature"] > -50
        assert "s3cr3t-token" not in result.log_text
    """

    def __init__(
        self,
        *,
        namespace: str = "tests",
        flow_id: str = "flow",
        execution_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        kv: Mapping[str, Any] | None = None,
        files: Mapping[str, bytes | Path] | None = None,
        namespace_files: Mapping[str, bytes | str] | None = None,
        outputs: Mapping[str, Mapping[str, Any]] | None = None,
        variables: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        trigger: Mapping[str, Any] | None = None,
        clock: FakeClock | None = None,
        root: Path | None = None,
    ) -> None:
        self.namespace = namespace
        self.flow_id = flow_id
        self.execution_id = execution_id or uuid.uuid4().hex[:22]
        self.inputs: dict[str, Any] = dict(inputs or {})
        """The flow's inputs (``{{ inputs.x }}``); a ``files=`` entry is added as its URI."""
        self.secrets: dict[str, str] = dict(secrets or {})
        """The secrets of the namespace (``secret('X')`` / ``ctx.secret('X')``)."""
        self.outputs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (outputs or {}).items()}
        """Outputs of earlier tasks (``{{ outputs.t.x }}``); each successful run adds its own."""
        self.variables = dict(variables or {})
        self.labels = dict(labels or {})
        self.trigger = dict(trigger or {})
        self.clock = clock or FakeClock()
        self.masker = Masker()
        """The execution's masker: every secret read (and value derived from one) is in it."""
        self.kv = MemoryKeyValueStore(namespace, self.clock)
        self.kv.seed(dict(kv or {}))
        self.namespace_files = MemoryNamespaceFiles(namespace)
        """``ctx.namespace_files``: seeded with ``namespace_files=`` (path -> content)."""
        self.namespace_files.seed(dict(namespace_files or {}))
        self._root = root
        self.store = FileStore(self._root_dir() / "storage")
        self._ids = itertools.count(1)
        self._renderer = load_renderer()
        self.prefix = execution_prefix(namespace, flow_id, self.execution_id)
        for name, data in (files or {}).items():
            content = data.read_bytes() if isinstance(data, Path) else bytes(data)
            key = f"{self.prefix}/inputs/{check_key(name)}"
            self.store.write(key, content)
            self.inputs.setdefault(name, self.store.uri(key))

    # -- files -----------------------------------------------------------------------------------

    def uri(self, name: str) -> str:
        """The URI of the file given as ``files={name: ...}``."""
        return self.store.uri(f"{self.prefix}/inputs/{check_key(name)}")

    def read(self, uri: str) -> bytes:
        """The content of any file of this execution (given, or stored by a task)."""
        key = uri.removeprefix("plait://").lstrip("/")
        if not self.store.exists(key):
            raise KeyError(uri)
        return self.store.read(key)

    # -- contexts --------------------------------------------------------------------------------

    def _root_dir(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="plait-harness-"))
        return self._root

    async def _secret(self, name: str) -> str:
        if name not in self.secrets:
            raise UserError(
                f"secret '{name}' not found for namespace '{self.namespace}' "
                "(looked in: the test harness's secrets)"
            )
        value = self.secrets[name]
        self.masker.add(value)
        return value

    def template_context(self, task_id: str, task_type: str | None = None) -> dict[str, Any]:
        """The names a template of task ``task_id`` sees (``secret`` and ``kv`` added on render)."""
        return {
            "flow": {"id": self.flow_id, "namespace": self.namespace, "revision": 1},
            "execution": {
                "id": self.execution_id,
                "startDate": self.clock.now().isoformat(),
                "originalId": self.execution_id,
                "state": "RUNNING",
                "retryAttempt": 0,
            },
            "inputs": self.inputs,
            "vars": self.variables,
            "outputs": self.outputs,
            "labels": self.labels,
            "trigger": self.trigger,
            "task": {"id": task_id, "type": task_type},
            "taskrun": {
                "id": f"run{task_id}",
                "value": None,
                "iteration": None,
                "attemptsCount": 1,
                "parentId": None,
            },
            "parents": [],
            "kv": self._kv_function,
        }

    async def _kv_function(
        self, key: str, namespace: str | None = None, errorOnMissing: bool = True
    ) -> Any:
        found = await self.kv.get(key, namespace=namespace)
        if found is None and errorOnMissing:
            raise UserError(
                f"kv('{key}'): no such key in namespace '{namespace or self.namespace}'"
            )
        return found

    def context(
        self,
        task_id: str = "task",
        *,
        task_type: str | None = None,
        working_dir: Path | None = None,
        log: CapturedLog | None = None,
    ) -> HarnessContext:
        """A fresh RunContext for one attempt of task ``task_id`` in this execution.

        ``working_dir`` shares a directory between task runs (as a ``WorkingDirectory`` does);
        ``log`` captures lines with a :class:`CapturedLog` subclass (built on ``self.masker``).
        """
        taskrun_id = f"run{next(self._ids)}"
        storage = HarnessStorage(self.store, f"{self.prefix}/{task_id}/{taskrun_id}", [self.prefix])
        return HarnessContext(
            namespace=self.namespace,
            flow_id=self.flow_id,
            execution_id=self.execution_id,
            task_id=task_id,
            taskrun_id=taskrun_id,
            attempt=1,
            masker=self.masker,
            storage=storage,
            working_dir=working_dir or self._root_dir() / "work" / taskrun_id,
            kv=self.kv,
            namespace_files=self.namespace_files,
            clock=self.clock,
            renderer=self._renderer,
            template_context=lambda: self.template_context(task_id, task_type),
            secret=self._secret,
            log=log,
        )

    # -- running ---------------------------------------------------------------------------------

    async def build(
        self, task: type[Task], properties: Mapping[str, Any], *, task_id: str = "task"
    ) -> Task:
        """The task object the engine would run: templates rendered, then validated.

        A property that does not render or validate raises :class:`~plait_sdk.UserError` with
        the message a flow's run would show.
        """
        context = self.template_context(task_id, task.type_name)
        text = text_properties(task)
        rendered: dict[str, Any] = {}
        for name, value in properties.items():
            try:
                rendered[name] = await render_value(
                    self._renderer,
                    self.masker,
                    context,
                    self._secret,
                    value,
                    as_text=name in text,
                )
            except UserError as error:
                raise UserError(f"task '{task_id}', property '{name}': {error}") from None
        try:
            return task.model_validate(rendered)
        except pydantic.ValidationError as error:
            problems = []
            for item in error.errors(include_url=False):
                where = ".".join(str(p) for p in item["loc"])
                problems.append(f"property '{where}': {item['msg']} (got {item.get('input')!r})")
            raise UserError(f"task '{task_id}': " + "; ".join(problems)) from None

    async def run(
        self,
        task: Task | type[Task],
        properties: Mapping[str, Any] | None = None,
        *,
        task_id: str = "task",
    ) -> TaskResult:
        """Run ``task`` (an instance, or a class and its ``properties`` as in a flow) once.

        Never raises for the task's own failure: the result says ``FAILED`` with the masked
        error, and the error is logged at ERROR as the engine logs it.
        """
        type_name = task.type_name
        ctx = self.context(task_id, task_type=type_name)
        result = TaskResult(context=ctx)
        try:
            if isinstance(task, Task):
                if properties is not None:
                    raise TypeError("give properties with a task class, not with an instance")
                instance = task
            else:
                instance = await self.build(task, properties or {}, task_id=task_id)
            result.output_value = await instance.run(ctx)
        except (TaskFailure, UserError) as error:
            result.exception = error
            result.error = self.masker.mask(str(error))
        except Exception as error:
            result.exception = error
            result.error = self.masker.mask(f"{type(error).__name__}: {error}")
        if result.error is not None:
            ctx.logs.append(LogLine("ERROR", result.error))
        else:
            self.outputs[task_id] = result.outputs
        result.file_uris = ctx.files
        return result
