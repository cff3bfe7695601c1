"""The CI switch: any usual spelling of "on" makes a missing service a failure, never a skip."""

from __future__ import annotations

import pytest
from ci_switch import in_ci, service_missing


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "YES", "on", " true "])
def test_ci_is_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert in_ci({"CI": value})
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="postgres is down; in CI"):
        service_missing("postgres is down")


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off"])
def test_ci_is_off(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
        assert not in_ci({})
    else:
        monkeypatch.setenv("CI", value)
        assert not in_ci({"CI": value})
    with pytest.raises(pytest.skip.Exception, match="postgres is down"):
        service_missing("postgres is down")


def test_every_test_tree_reads_the_switch_through_the_helper() -> None:
    """No other reading of CI may come back (three spellings once disagreed on CI=1)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for tree in (root / "tests", root / "plugins")
        for path in tree.rglob("*.py")
        if path.name not in ("ci_switch.py", "test_ci_switch.py")
        and ('environ.get("CI"' in path.read_text() or "environ['CI']" in path.read_text())
    ]
    assert offenders == []
