"""The plait-s3 connector (work in progress)."""

__all__: list[str] = []
