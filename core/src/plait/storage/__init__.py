"""Persistence backends (SQL) and internal storage (files between tasks)."""

from plait.storage._cache import ChangeCache
from plait.storage._files import (
    SCHEME,
    ExecutionStorage,
    LocalStorageBackend,
    StorageError,
    check_key,
    execution_prefix,
    key_of,
)
from plait.storage._sql import FlowConflict, SqlRepository, execution_row

__all__ = [
    "SCHEME",
    "ChangeCache",
    "ExecutionStorage",
    "FlowConflict",
    "LocalStorageBackend",
    "SqlRepository",
    "StorageError",
    "check_key",
    "execution_prefix",
    "execution_row",
    "key_of",
]
