"""The namespaced, typed key-value store."""

from plait.kv._store import (
    TYPES,
    KVStore,
    ScopedKV,
    check_key,
    decode,
    encode,
    infer_type,
    plain_value,
)

__all__ = [
    "TYPES",
    "KVStore",
    "ScopedKV",
    "check_key",
    "decode",
    "encode",
    "infer_type",
    "plain_value",
]
