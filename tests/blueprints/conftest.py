"""The session fixtures of tests/blueprint_harness.py, for every blueprint test."""

from blueprint_harness import hooks, host, maria, pg, plait, s3, saas

__all__ = ["hooks", "host", "maria", "pg", "plait", "s3", "saas"]
