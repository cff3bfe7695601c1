"""A plugin outside the core proving the SDK's contract: ``weighted.Branch``, a flowable that
runs one of its branches picked at random by weight (seeded, so a run is reproducible), and
``weighted.Tag``, a task that sets labels of its execution. It imports nothing but the SDK."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from plait_sdk import (
    FlowableTask,
    FlowScope,
    Model,
    Output,
    RunContext,
    State,
    Task,
    TaskList,
    hookimpl,
)
from pydantic import Field

PLAIT_PLUGIN_API = ">=1.0,<2"


class WeightedBranch(Model):
    weight: float = Field(gt=0)
    """The branch's share of the draws."""
    tasks: TaskList = Field(min_length=1)
    """What the branch runs."""


class Branch(FlowableTask):
    """Run one of ``branches``, picked at random in proportion to their weights.

    The draw uses ``seed`` (rendered, so ``{{ execution.id }}`` gives each execution its own
    draw); the branches not picked are shown SKIPPED. Outputs ``branch``: the index picked.
    """

    type_name: ClassVar[str] = "weighted.Branch"
    branches: list[WeightedBranch] = Field(min_length=1)
    """The branches and their weights."""
    seed: Any = None
    """The seed of the draw; the same seed always picks the same branch."""

    def pick(self, seed: Any) -> int:
        draw = random.Random(str(seed))
        weights = [b.weight for b in self.branches]
        return draw.choices(range(len(self.branches)), weights=weights)[0]

    async def decide(self, scope: FlowScope) -> None:
        if "branch" not in scope.memory:
            picked = self.pick(await scope.render(self.seed))
            scope.remember("branch", picked)
            scope.set_outputs({"branch": picked})
            for index, branch in enumerate(self.branches):
                if index != picked:
                    for task in branch.tasks:
                        scope.skip(task)
        state = await scope.run_tasks(self.branches[scope.memory["branch"]].tasks)
        if state is State.FAILED:
            scope.fail(f"branch {scope.memory['branch']} failed")
            return
        scope.finish(state)


class TagOutput(Output):
    labels: dict[str, str]
    """The labels set."""


class Tag(Task):
    """Set labels of the running execution (values are rendered and turned into text)."""

    type_name: ClassVar[str] = "weighted.Tag"
    labels: dict[str, Any]
    """The labels to add or replace."""

    async def run(self, ctx: RunContext) -> TagOutput:
        text = {str(k): str(v) for k, v in self.labels.items()}
        ctx.set_labels(text)
        return TagOutput(labels=text)


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    register(Branch)
    register(Tag)
