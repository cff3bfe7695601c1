"""Alembic migrations of the Plait database (one history for every backend)."""
