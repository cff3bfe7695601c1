"""The limits module: defaults, environment overrides and clear errors for bad values."""

from __future__ import annotations

import pytest
from plait.limits import Limits, limits, override_limits
from plait_sdk import UserError


def test_environment_overrides_a_limit() -> None:
    got = Limits.from_env(
        {"PLAIT_LIMIT_TEMPLATE_MAX_STRING": "1_024", "PLAIT_LIMIT_LEASE_SECONDS": "2.5"}
    )
    assert got.template_max_string == 1024
    assert got.lease_seconds == 2.5
    assert got.yaml_max_depth == Limits().yaml_max_depth


@pytest.mark.parametrize("raw", ["lots", "0", "-3", "1.5"])
def test_a_bad_value_names_the_variable(raw: str) -> None:
    with pytest.raises(UserError, match="PLAIT_LIMIT_YAML_MAX_DEPTH"):
        Limits.from_env({"PLAIT_LIMIT_YAML_MAX_DEPTH": raw})


def test_override_is_undone() -> None:
    before = limits().subflow_max_depth
    with override_limits(subflow_max_depth=3) as changed:
        assert limits().subflow_max_depth == 3 == changed.subflow_max_depth
    assert limits().subflow_max_depth == before
