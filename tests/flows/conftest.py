import pytest
from plait.plugins import TypeRegistry
from plait.runtime import plugin_host


@pytest.fixture(scope="session")
def registry() -> TypeRegistry:
    return plugin_host().registry
