"""The plait-scripts connector (work in progress)."""

__all__: list[str] = []
