"""Every flow of the README is valid, and runs (except the one that needs PyPI)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from .conftest import Harness

README = Path(__file__).resolve().parents[2] / "README.md"
FLOWS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    if block.startswith("id: ")
]


def test_the_readme_has_an_example_flow_per_task() -> None:
    for lang in ("python", "shell", "node"):
        for kind in ("Script", "Commands"):
            assert any(f"type: plait.scripts.{lang}.{kind}\n" in f for f in FLOWS), (lang, kind)


@pytest.mark.parametrize("source", FLOWS, ids=[f.split("\n", 1)[0][4:] for f in FLOWS])
async def test_readme_flow(source: str, harness: Harness, request: pytest.FixtureRequest) -> None:
    if "plait.scripts.node" in source:
        request.getfixturevalue("node")
    if "dependencies:" in source:  # would download from PyPI: validate only
        await harness.runner.deploy(textwrap.dedent(source), file="README.md")
        return
    ex = await harness.run(source)
    assert ex.state.value == "SUCCESS", ex.error
    assert all(r.outputs.get("exitCode", 0) == 0 for r in ex.task_runs)
