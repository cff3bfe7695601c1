import pytest
from plait.plugins import PluginHost, TypeRegistry


@pytest.fixture(scope="session")
def registry() -> TypeRegistry:
    # The core types only: the expected messages (and their "did you mean" hints) must not
    # change when a connector is installed.
    return PluginHost.discover(entry_points=False).registry
