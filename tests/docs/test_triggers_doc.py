"""docs/triggers.md: every `triggers:` snippet validates inside a flow (no stale property)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plait.flows import load_flow
from plait.runtime import plugin_host

DOC = Path(__file__).resolve().parents[2] / "docs" / "triggers.md"
SNIPPETS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)]


def test_the_doc_has_snippets() -> None:
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_a_trigger_snippet_validates_in_a_flow(snippet: str) -> None:
    assert snippet.startswith("triggers:")
    flow = (
        "id: doc\nnamespace: docs\ninputs:\n  - id: day\n    type: STRING\n    defaults: x\n"
        "tasks:\n  - id: log\n    type: plait.core.Log\n    message: hi\n" + snippet
    )
    load_flow(flow, registry=plugin_host().registry)
