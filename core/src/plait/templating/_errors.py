"""Errors of templates: a syntax error found before running, or a failure while rendering."""

from __future__ import annotations

from plait_sdk import UserError


class TemplateError(UserError):
    """A template problem; ``line`` is within the template, ``expression`` its source."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        expression: str | None = None,
    ) -> None:
        super().__init__(message, line=line, column=column)
        self.message = message
        self.expression = expression

    def __str__(self) -> str:
        where = f" (template line {self.line})" if self.line and self.line > 1 else ""
        shown = ""
        if self.expression is not None:
            text = " ".join(self.expression.split())
            shown = f" in `{text[:160]}{'...' if len(text) > 160 else ''}`"
        return f"{self.message}{where}{shown}"


class TemplateSyntaxError(TemplateError):
    """The template does not parse."""


class TemplateRenderError(TemplateError):
    """Rendering failed: an undefined name, a refused attribute, a failing filter..."""
