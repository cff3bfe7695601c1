"""Which task runs a restart redoes, as Kestra's ``ExecutionService.restart`` decides.

Kestra restarts an ended execution in place: every failed (or killed) task run and its
ancestors are reopened, every other run keeps its state and outputs. On top of that it drops
runs whose work must be done again from scratch rather than resumed:

- the runs of ``errors``, ``finally`` and ``afterExecution`` tasks (of the flow and of every
  flowable task), so the handlers run again when the restarted tasks end;
- every run inside a reopened ``WorkingDirectory``: its tasks share one working directory that
  is gone, so the whole directory is redone, the tasks that succeeded in it too.

A reopened runnable task gets a new attempt (its attempts so far are kept); a reopened
flowable task runs again and recreates the child runs it lacks. Inside a loop only the failed
iterations are redone: the other iterations' runs are kept, with their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from plait.flows import Flow, FlowableTask, State, TaskSpec, all_task_specs
from plait.records import TaskRun

#: The flowable type whose children are all redone when it is reopened (Kestra's worker task).


def shares_working_directory(spec: TaskSpec) -> bool:
    """A WorkingDirectory-like flowable (its children share one directory): redone whole, and
    Kestra's worker task (``workerTaskrun``) for its children. Asked of the flowable through
    the SDK, not by type name, so a plugin's flowable behaves the same."""
    return spec.flowable is not None and spec.flowable.shares_working_directory()


#: The label a restarted execution carries (Kestra's ``Label.RESTARTED``).
RESTARTED_LABEL = "system.restarted"

#: Task run states a restart redoes (Kestra's ``isFailed()``, and KILLED, which Plait restarts).
_REDONE = frozenset({State.FAILED, State.KILLED})


@dataclass
class RestartPlan:
    """What a restart changes: runs reopened (failed ones and their ancestors) and runs removed."""

    reopened: list[TaskRun] = field(default_factory=list)
    removed: list[TaskRun] = field(default_factory=list)


def handler_task_ids(flow: Flow, specs: Mapping[str, TaskSpec]) -> set[str]:
    """Ids of every task under an ``errors``, ``finally`` or ``afterExecution`` list (the
    flow's and every flowable task's), with their children."""
    lists: list[list[TaskSpec]] = [flow.errors, flow.finally_, flow.after_execution]
    for spec in specs.values():
        if isinstance(spec.flowable, FlowableTask):
            for name in ("errors", "finally_"):
                handlers = getattr(spec.flowable, name, None)
                if isinstance(handlers, list):
                    lists.append(handlers)
    return {s.id for handlers in lists for s in all_task_specs(handlers)}


def plan_restart(
    flow: Flow, specs: Mapping[str, TaskSpec], runs: Mapping[str, TaskRun]
) -> RestartPlan:
    """The runs a restart of an execution with these ``runs`` reopens and removes."""

    def ancestors(run: TaskRun) -> list[TaskRun]:
        found = []
        while run.parent_id is not None and run.parent_id in runs:
            run = runs[run.parent_id]
            found.append(run)
        return found

    handlers = handler_task_ids(flow, specs)
    removed = {r.id for r in runs.values() if r.task_id in handlers}
    removed |= {r.id for r in runs.values() if any(a.id in removed for a in ancestors(r))}
    reopened: dict[str, TaskRun] = {}
    for run in runs.values():
        if run.id in removed or run.state not in _REDONE:
            continue
        for each in (run, *ancestors(run)):
            reopened.setdefault(each.id, each)
    workdirs = {r.id for r in reopened.values() if shares_working_directory(specs[r.task_id])}
    for run in runs.values():
        if run.id not in workdirs and any(a.id in workdirs for a in ancestors(run)):
            removed.add(run.id)
    return RestartPlan(
        reopened=[r for r in reopened.values() if r.id not in removed],
        removed=[r for r in runs.values() if r.id in removed],
    )
