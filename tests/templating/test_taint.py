"""A render that uses a sensitive value (SecretText) is noticed, whatever the way it is used."""

from __future__ import annotations

import pytest
from plait.templating import TemplateEngine
from plait.templating._taint import SecretText, at_rest, masked_view, tracking

SEALED = {"$secret": "c2VhbGVk", "$key": "0123456789abcdef"}
CONTEXT = {
    "inputs": {"tok": SecretText.of("pw-Secret", SEALED), "name": "ada"},
    "outputs": {"t": {"list": ["a", SecretText.of("b-secret", SEALED)], "plain": "x"}},
}
ENGINE = TemplateEngine()


@pytest.mark.parametrize(
    "source",
    [
        "{{ inputs.tok }}",
        "{{ inputs.tok | upper }}",
        "{{ inputs.tok | replace('-', '_') }}",
        "{{ inputs.tok.lower() }}",
        "{{ inputs['tok'][1:] }}",
        "{{ (inputs.tok ~ '!') | upper }}",
        "{{ inputs.tok + 'x' }}",
        "{{ 'x' + inputs.tok }}",
        "{{ inputs.tok | length }}",
        "{% for v in outputs.t.list %}{{ v | upper }}{% endfor %}",
        "{% for k, v in inputs.items() %}{{ v | lower }}{% endfor %}",
        "{{ inputs | json | upper }}",
        "{{ outputs.t.list | join(',') | upper }}",
        "{% set x = inputs.tok %}{{ x | upper }}",
        "{{ render('{{ inputs.tok | upper }}') }}",
    ],
)
async def test_using_a_sensitive_value_is_noticed(source: str) -> None:
    with tracking() as seen:
        await ENGINE.render_native(source, CONTEXT)
    assert seen.touched


@pytest.mark.parametrize(
    "source",
    ["{{ inputs.name | upper }}", "{{ outputs.t.plain }}", "{{ outputs.t.list[0] }}", "plain"],
)
async def test_values_beside_a_sensitive_one_are_not_tainted(source: str) -> None:
    with tracking() as seen:
        await ENGINE.render_native(source, CONTEXT)
    assert not seen.touched


def test_sensitive_values_are_stored_sealed_and_shown_masked() -> None:
    assert at_rest(CONTEXT["outputs"]) == {"t": {"list": ["a", SEALED], "plain": "x"}}
    assert at_rest({"k": "v"}) == {"k": "v"}
    assert masked_view(at_rest(CONTEXT["outputs"])) == {
        "t": {"list": ["a", "******"], "plain": "x"}
    }
    assert masked_view(CONTEXT["inputs"]) == {"tok": "******", "name": "ada"}
