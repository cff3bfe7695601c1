"""Internal storage (files passed between tasks, ``plait://`` URIs) and files private to their
owner (the home, internal storage and the database are created 0700/0600)."""

from plait.files._private import make_private_dirs, open_private, tighten
from plait.files._storage import (
    SCHEME,
    ExecutionStorage,
    LocalStorageBackend,
    StorageError,
    check_key,
    execution_prefix,
    key_of,
)

__all__ = [
    "SCHEME",
    "ExecutionStorage",
    "LocalStorageBackend",
    "StorageError",
    "check_key",
    "execution_prefix",
    "key_of",
    "make_private_dirs",
    "open_private",
    "tighten",
]
