"""The CI switch, read one way by every test tree (core tests and the plugins' alike).

A test that needs a service (PostgreSQL, MariaDB, Node.js...) skips when it is missing on a
developer's machine, but fails in CI: CI must never pass by skipping. ``CI`` counts as set when it
is ``true``, ``1``, ``yes`` or ``on``, in any case (GitHub Actions sets ``true``, others ``1``).

``tests/`` is on pytest's ``pythonpath``, so ``from ci_switch import service_missing`` works in
every test directory of the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

ON = frozenset({"true", "1", "yes", "on"})


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the tests run in CI, where every service is required."""
    return environ.get("CI", "").strip().lower() in ON


def service_missing(problem: str) -> NoReturn:
    """Skip the test for ``problem`` (a service is missing), or fail it in CI."""
    if in_ci():
        pytest.fail(f"{problem}; in CI (CI={os.environ['CI']}) it is required", pytrace=False)
    pytest.skip(problem)
