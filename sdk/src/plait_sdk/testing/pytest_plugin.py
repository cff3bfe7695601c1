"""The pytest plugin of plait-sdk (entry point ``pytest11``): the harness as fixtures.

``fake_clock``
    A :class:`~plait_sdk.testing.FakeClock` shared by the test's harnesses.
``task_harness``
    A :class:`~plait_sdk.testing.TaskHarness` (one execution) on that clock, files under the
    test's ``tmp_path``.
``trigger_harness``
    A factory: ``trigger_harness(MyTrigger, {"interval": "PT1M"}, secrets=...)`` gives a
    :class:`~plait_sdk.testing.TriggerHarness` on that clock.

Example::

    async def test_request(task_harness) -> None:
        result = await task_harness.run(Hello, {"name": "world"})
        assert result.outputs == {"greeting": "hello world"}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from plait_sdk._trigger import PollingTrigger
from plait_sdk.testing._clock import FakeClock
from plait_sdk.testing._task import TaskHarness
from plait_sdk.testing._trigger import TriggerHarness


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock at 2026-01-01T00:00:00Z that moves only when the test moves it."""
    return FakeClock()


@pytest.fixture
def task_harness(tmp_path: Path, fake_clock: FakeClock) -> TaskHarness:
    """A harness standing for one execution (namespace ``tests``, flow ``flow``)."""
    return TaskHarness(clock=fake_clock, root=tmp_path / "plait-task-harness")


@pytest.fixture
def trigger_harness(tmp_path: Path, fake_clock: FakeClock) -> Callable[..., TriggerHarness]:
    """``trigger_harness(TriggerClassOrInstance, properties=None, **options)``."""

    def make(
        trigger: PollingTrigger | type[PollingTrigger],
        properties: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TriggerHarness:
        options.setdefault("clock", fake_clock)
        options.setdefault("root", tmp_path / "plait-trigger-harness")
        return TriggerHarness(trigger, properties, **options)

    return make
