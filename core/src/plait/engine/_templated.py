"""Task properties the engine itself reads that may be templates, as Kestra's ``Property``
allows: a task's ``timeout`` and its retry's ``maxAttempts``.

Each is rendered for the task run (its inputs, vars, outputs, taskrun...) the first time the
engine needs it, and kept in the run's durable scratch, so a retry or a recovered process uses
the same value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pydantic
from plait_sdk import Model, UserError

from plait.flows import Retry, TaskSpec
from plait.records import TaskRun
from plait.templating import is_template as _is_template_text


def is_template(value: object) -> bool:
    """Whether ``value`` is text holding a template (rendered when the task runs)."""
    return isinstance(value, str) and _is_template_text(value)


class _Duration(Model):
    """A duration read as the flow file's are (Java's Duration.parse, any case)."""

    value: timedelta


TIMEOUT_KEY = "timeout"
ATTEMPTS_KEY = "maxAttempts"


async def timeout_of(render: Any, run: TaskRun, spec: TaskSpec) -> timedelta | None:
    """The task's timeout for ``run``: as written, or its template rendered (once)."""
    if not is_template(spec.timeout):
        assert spec.timeout is None or isinstance(spec.timeout, timedelta)
        return spec.timeout
    if TIMEOUT_KEY not in run.scratch:
        text = str(await render(run, spec.timeout)).strip()
        try:
            parsed = _Duration.model_validate({"value": text}).value
        except pydantic.ValidationError:
            parsed = None
        if parsed is None or parsed <= timedelta(0):
            raise UserError(f"timeout {spec.timeout!r} rendered {text!r}, not a duration")
        run.scratch[TIMEOUT_KEY] = parsed.total_seconds()
    return timedelta(seconds=float(run.scratch[TIMEOUT_KEY]))


async def resolve_attempts(render: Any, run: TaskRun, policy: Retry | None) -> None:
    """Render a templated ``maxAttempts`` of ``policy`` for ``run`` (once) into its scratch."""
    if policy is None or not is_template(policy.max_attempts) or ATTEMPTS_KEY in run.scratch:
        return
    text = str(await render(run, policy.max_attempts)).strip()
    try:
        attempts = int(text)
    except ValueError:
        raise UserError(f"maxAttempts {policy.max_attempts!r} rendered {text!r}") from None
    if attempts < 1:
        raise UserError(f"maxAttempts {policy.max_attempts!r} rendered {attempts}, below 1")
    run.scratch[ATTEMPTS_KEY] = attempts


def retry_for(policy: Retry | None, run: TaskRun) -> Retry | None:
    """``policy`` with its templated ``maxAttempts`` as rendered for ``run``."""
    if policy is None or not is_template(policy.max_attempts):
        return policy
    attempts = run.scratch.get(ATTEMPTS_KEY)
    if attempts is None:
        return policy.model_copy(update={"max_attempts": 1})  # not rendered: no retry
    return policy.model_copy(update={"max_attempts": int(attempts)})
