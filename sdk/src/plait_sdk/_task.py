"""The base classes a connector subclasses to add a task type."""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict

from plait_sdk._models import PROPERTIES_CONFIG, Model

if TYPE_CHECKING:
    from plait_sdk._context import RunContext


class Output(Model):
    """Base of a task's outputs. Fields become ``outputs.<taskId>.<field>`` in templates.

    Example::

        >>> class RequestOutput(Output):
        ...     code: int
        ...     body: str | None = None
        >>> RequestOutput(code=200).dump()
        {'code': 200}
    """

    model_config = ConfigDict(**{**PROPERTIES_CONFIG, "extra": "allow"})


class Example(Model):
    """A documented usage example of a task or trigger, shown by ``plait plugins doc``.

    Example::

        >>> Example(title="Say hello", code="type: plait.core.Log\\nmessage: hi").title
        'Say hello'
    """

    title: str
    code: str
    """A YAML snippet: the task (or a whole flow when ``full`` is true)."""
    full: bool = False


class Task(Model):
    """A runnable task: its properties are the model's fields, its work is :meth:`run`.

    Subclasses set ``type_name`` (a dotted name, ``<plugin>.<Name>``), may set ``aliases``
    (for example Kestra's type name of the equivalent task), and implement ``run``. Properties
    may hold templates in a flow; the core renders them with the execution's context and validates
    the result against this model before ``run`` is called, so ``run`` sees typed values.

    Example::

        >>> class Hello(Task):
        ...     '''Log a greeting.'''
        ...     type_name: ClassVar[str] = "acme.Hello"
        ...     name: str
        ...     '''Who to greet.'''
        ...
        ...     async def run(self, ctx: RunContext) -> Output:
        ...         ctx.log.info("hello %s", self.name)
        ...         return Output()
    """

    type_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The version of this type. A plugin registers several classes with one ``type_name`` and
    #: different versions to change a type without breaking flows written for the old one; a
    #: flow picks one with ``version: N`` on the task, the latest when omitted.
    type_version: ClassVar[int] = 1
    examples: ClassVar[tuple[Example, ...]] = ()
    #: Runnable tasks are executed by workers; flowable ones are decided by the executor.
    flowable: ClassVar[bool] = False
    #: A pure task has no effect outside its outputs and logs and finishes at once without
    #: waiting on anything (``Return``, ``Log``). The engine may run it inside the step that
    #: started it and commit its result with the next durable step, saving a commit per task;
    #: after a crash it may simply run again. Never set it on a task that talks to the world.
    pure: ClassVar[bool] = False

    async def run(self, ctx: RunContext) -> Output | None:
        """Do the work and return the outputs (``None`` for a task without outputs)."""
        raise NotImplementedError(f"{type(self).__name__}.run is not implemented")

    @classmethod
    def output_model(cls) -> type[Output] | None:
        """The outputs model, read from the return annotation of :meth:`run`."""
        return _output_model_of(cls.run, Output)


def _output_model_of(fn: Any, base: type[Output]) -> type[Output] | None:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # a plugin's forward reference we cannot resolve: no outputs schema
        return None
    ret = hints.get("return")
    candidates = typing.get_args(ret) or (ret,)
    for candidate in candidates:
        if inspect.isclass(candidate) and issubclass(candidate, base) and candidate is not base:
            return candidate
    return None
