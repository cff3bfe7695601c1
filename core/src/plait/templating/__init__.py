"""Templating: Jinja2 in a sandbox, strict about undefined names, with Kestra's Pebble forms."""

from plait.templating._engine import TemplateEngine, finalize, is_template
from plait.templating._errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from plait.templating._filters import format_datetime, format_duration, to_json

__all__ = [
    "TemplateEngine",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "finalize",
    "format_datetime",
    "format_duration",
    "is_template",
    "to_json",
]
