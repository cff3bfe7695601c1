"""Every file under invalid/ yields exactly the messages in its .expected sibling."""

from pathlib import Path

import pytest
from plait.flows import load_flow, validate_flow_text
from plait.plugins import TypeRegistry
from plait_sdk import UserError, ValidationError

CORPUS = Path(__file__).parent / "invalid"
CASES = sorted(CORPUS.glob("*.yaml"))


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_flow_yields_its_exact_messages(path: Path, registry: TypeRegistry) -> None:
    expected = path.with_suffix(".expected").read_text("utf-8").splitlines()
    assert expected, f"{path.name} has no expected messages"
    problems = validate_flow_text(path.read_text("utf-8"), registry=registry, file=path.name)
    assert [str(p) for p in problems] == expected


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_load_flow_raises_a_user_error_listing_the_same_problems(
    path: Path, registry: TypeRegistry
) -> None:
    expected = path.with_suffix(".expected").read_text("utf-8").splitlines()
    with pytest.raises(UserError) as caught:
        load_flow(path, registry=registry, file=path.name)
    error = caught.value
    lines = [str(p) for p in error.problems] if isinstance(error, ValidationError) else [str(error)]
    assert lines == expected
