"""The core's own tasks, registered through the same hooks as any connector plugin."""

from plait.builtin import plugin

__all__ = ["plugin"]
