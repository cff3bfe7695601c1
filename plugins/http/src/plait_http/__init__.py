"""The plait-http connector (work in progress)."""

__all__: list[str] = []
