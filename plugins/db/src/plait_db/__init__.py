"""The plait-db connector (work in progress)."""

__all__: list[str] = []
