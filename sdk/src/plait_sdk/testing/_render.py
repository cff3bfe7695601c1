"""Template rendering in the harness: the core's own sandboxed engine, found through a hook.

The SDK does not implement templates: a second Jinja set-up would drift from the core's sandbox,
filters and Kestra forms, and a test passing on it would prove nothing about a real run. The SDK
defines the ``plait.template_renderer`` entry point group and the :class:`TemplateRenderer`
protocol; the core registers its engine there. A plugin's tests therefore render exactly as a
run does when the core is installed (it is, in any environment that can run the plugin), and
never import ``plait``. Without the core, values holding no template pass through and a template
is refused with a message saying what to install.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from plait_sdk._errors import UserError
from plait_sdk._masking import Masker

#: The entry point group where a runtime offers its template engine (a zero-argument factory).
RENDERER_ENTRY_POINT = "plait.template_renderer"
"""The entry-point group where the harness finds the template engine (see
:class:`TemplateRenderer`).

Example::

    [project.entry-points."plait.template_renderer"]
    plait = "plait.templating:TemplateEngine"
"""
_MARKERS = ("{{", "{%", "{#")


@runtime_checkable
class TemplateRenderer(Protocol):
    """What the harness needs of a template engine; the core's ``TemplateEngine`` is one.

    A runtime registers its engine in its pyproject.toml. Example::

        [project.entry-points."plait.template_renderer"]
        plait = "plait.templating:TemplateEngine"
    """

    async def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render ``source`` to text."""
        ...

    async def render_native(self, source: str, context: Mapping[str, Any]) -> Any:
        """Render, keeping the native type when ``source`` is one ``{{ expression }}``."""
        ...


def is_template(value: str) -> bool:
    return "{" in value and any(m in value for m in _MARKERS)


class _NoRenderer:
    """Stands in when no runtime is installed: plain values pass, templates are refused."""

    async def render(self, source: str, context: Mapping[str, Any]) -> str:
        return self._refuse(source)

    async def render_native(self, source: str, context: Mapping[str, Any]) -> Any:
        return self._refuse(source)

    def _refuse(self, source: str) -> str:
        if not is_template(source):
            return source
        raise UserError(
            f"cannot render {source[:80]!r}: no template engine is installed (the harness "
            f"renders with the Plait core's engine, found through the {RENDERER_ENTRY_POINT!r} "
            "entry point); install plait in the test environment"
        )


def load_renderer() -> TemplateRenderer:
    """The installed runtime's template engine (the first by name), or one that refuses
    templates."""
    found = sorted(entry_points(group=RENDERER_ENTRY_POINT), key=lambda ep: ep.name)
    if not found:
        return _NoRenderer()
    factory = found[0].load()
    renderer = factory()
    if not isinstance(renderer, TemplateRenderer):
        raise TypeError(f"{found[0].value} does not give a TemplateRenderer")
    return renderer


def text_properties(cls: type[BaseModel]) -> frozenset[str]:
    """Properties (by alias and name) typed as text: their templates render to a string, as
    Kestra (and the core) render them; other properties get the native value."""
    names = set()
    for name, info in cls.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        if str in args and all(a in (str, type(None)) or _text_list(a) for a in args):
            names.add(name)
            if info.alias:
                names.add(info.alias)
    return frozenset(names)


def _text_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def mask_derived(masker: Masker, value: Any) -> None:
    """A value a template derived from a secret is itself sensitive (as in a real run)."""
    if isinstance(value, str):
        masker.add(str.__str__(value))
    elif isinstance(value, dict):
        for item in value.values():
            mask_derived(masker, item)
    elif isinstance(value, list):
        for item in value:
            mask_derived(masker, item)


async def render_value(
    renderer: TemplateRenderer,
    masker: Masker,
    context: Mapping[str, Any],
    secret: Callable[[str], Awaitable[str]],
    value: Any,
    *,
    as_text: bool = False,
) -> Any:
    """Render every string in ``value`` as the core does: each string on its own, keys as text,
    and whatever a ``secret()`` call flowed into registered as sensitive."""
    used: list[str] = []

    async def tracked_secret(name: str) -> str:
        found = await secret(name)
        used.append(found)
        return found

    full = {**context, "secret": tracked_secret}

    async def leaf(item: Any, text: bool) -> Any:
        if isinstance(item, dict):
            return {
                (await leaf(k, True) if isinstance(k, str) else k): await leaf(v, False)
                for k, v in item.items()
            }
        if isinstance(item, list | tuple):
            items = [await leaf(v, False) for v in item]
            return items if isinstance(item, list) else tuple(items)
        if not isinstance(item, str):
            return item
        used.clear()
        if text:
            result: Any = await renderer.render(item, full)
        else:
            result = await renderer.render_native(item, full)
        if used or (masker and _holds_known(masker, result)):
            mask_derived(masker, result)
        return result

    return await leaf(value, as_text)


def _holds_known(masker: Masker, value: Any) -> bool:
    if isinstance(value, str):
        return masker.contains(value)
    if isinstance(value, dict):
        return any(_holds_known(masker, k) or _holds_known(masker, v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_known(masker, v) for v in value)
    return False
