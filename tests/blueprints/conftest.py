"""The session fixtures of tests/blueprint_harness.py, for every blueprint test."""

from blueprint_harness import host, maria, pg, plait, s3, saas

__all__ = ["host", "maria", "pg", "plait", "s3", "saas"]
