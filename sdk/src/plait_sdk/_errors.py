"""The one error hierarchy for problems a user can fix.

Everything a user can cause (a bad flow file, a bad input, a bad property, a failing template)
is a :class:`UserError`: the CLI and the API print it as one line, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class PlaitError(Exception):
    """Base class of every error Plait raises on purpose.

    Example::

        try:
            await task.run(ctx)
        except PlaitError as error:  # a UserError, TaskFailure, PluginError...
            print(error)
    """


class UserError(PlaitError):
    """A problem the user can fix, located as precisely as it is known.

    Renders as ``file:line:column: field: reason``, leaving out the parts that are unknown.

    Example::

        >>> str(UserError("unknown task type 'plait.core.Lgo'", file="hello.yaml", line=7,
        ...               column=11, field="tasks[0].type"))
        "hello.yaml:7:11: tasks[0].type: unknown task type 'plait.core.Lgo'"
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.column = column
        self.field = field

    @property
    def location(self) -> str:
        """``file:line:column`` with the unknown parts left out (may be empty)."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(self.file)
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        prefix = [p for p in (self.location, self.field) if p]
        return ": ".join([*prefix, self.reason])


class ValidationError(UserError):
    """Several located problems found at once (a flow file is checked as a whole).

    Example::

        >>> err = ValidationError([UserError("required", field="id")], file="f.yaml")
        >>> len(err.problems)
        1
    """

    def __init__(self, problems: Iterable[UserError], *, file: str | None = None) -> None:
        self.problems: Sequence[UserError] = list(problems)
        summary = f"{len(self.problems)} problem(s) found"
        super().__init__(summary, file=file)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class TaskFailure(PlaitError):
    """Raised by a task to fail its task run with a clean message and no traceback.

    Example::

        >>> raise TaskFailure("HTTP 503 from https://api.example.com: service unavailable")
        Traceback (most recent call last):
        ...
        plait_sdk._errors.TaskFailure: HTTP 503 from https://api.example.com: service unavailable
    """


class PluginError(PlaitError):
    """A plugin could not be loaded or misbehaved while registering.

    Example::

        raise PluginError("acme-plait needs libacme >= 2, found 1.4")
    """
