"""A plugin whose import fails, as one with a missing optional dependency would."""

raise ImportError("plait_broken needs libacme, which is not installed")
