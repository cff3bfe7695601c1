"""The base of flowable task types: the SDK's, so a plugin's flowables are the core's peers."""

from __future__ import annotations

from plait_sdk import FlowableTask

__all__ = ["FlowableTask"]
