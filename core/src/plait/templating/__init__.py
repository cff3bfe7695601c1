"""Templating: Jinja2 in a sandbox, strict about undefined names, with Kestra's Pebble forms."""

from plait.templating._engine import TemplateEngine, finalize, is_template
from plait.templating._errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from plait.templating._filters import format_datetime, format_duration, to_json
from plait.templating._taint import (
    SECRET,
    SECRET_KEY,
    SecretText,
    at_rest,
    holds_secret,
    is_sealed,
    masked_view,
    tracking,
)

__all__ = [
    "SECRET",
    "SECRET_KEY",
    "SecretText",
    "TemplateEngine",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "at_rest",
    "finalize",
    "format_datetime",
    "format_duration",
    "holds_secret",
    "is_sealed",
    "is_template",
    "masked_view",
    "to_json",
    "tracking",
]
