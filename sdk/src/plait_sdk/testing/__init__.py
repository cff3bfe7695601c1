"""``plait_sdk.testing``: run a plugin's tasks and triggers in-process, as a real run would.

Built only on the SDK: a plugin's tests import this, never ``plait``. Logs are masked with the
same :class:`~plait_sdk.Masker` the engine uses, storage follows the core's URI and access
rules, the key-value store its types and expiry, and templates are rendered by the core's own
sandboxed engine (found through the ``plait.template_renderer`` entry point, see
:class:`TemplateRenderer`). The pytest plugin (``plait_sdk.testing.pytest_plugin``, loaded
automatically once plait-sdk is installed) offers the fixtures ``task_harness``,
``trigger_harness`` and ``fake_clock``. :class:`FlowableHarness` steps a flowable's decisions.

Example::

    from plait_sdk.testing import TaskHarness

    async def test_greets() -> None:
        harness = TaskHarness(secrets={"TOKEN": "s3cr3t-value"})
        result = await harness.run(Hello, {"name": "{{ secret('TOKEN') }}"})
        assert result.state == "SUCCESS"
        assert "s3cr3t-value" not in result.log_text
"""

from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._context import CapturedLog, HarnessContext, LogLine, Metric
from plait_sdk.testing._flowable import Decision, FakeRun, FlowableHarness
from plait_sdk.testing._kv import MemoryKeyValueStore
from plait_sdk.testing._nsfiles import MemoryNamespaceFiles
from plait_sdk.testing._render import RENDERER_ENTRY_POINT, TemplateRenderer
from plait_sdk.testing._storage import HarnessStorage
from plait_sdk.testing._task import TaskHarness, TaskResult
from plait_sdk.testing._trigger import Evaluation, TriggerHarness

__all__ = [
    "RENDERER_ENTRY_POINT",
    "CapturedLog",
    "Decision",
    "Evaluation",
    "FakeClock",
    "FakeRun",
    "FlowableHarness",
    "HarnessContext",
    "HarnessStorage",
    "LogLine",
    "MemoryKeyValueStore",
    "MemoryNamespaceFiles",
    "Metric",
    "TaskHarness",
    "TaskResult",
    "TemplateRenderer",
    "TriggerHarness",
]
