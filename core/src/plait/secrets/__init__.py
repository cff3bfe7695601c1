"""Secrets: authenticated encryption at rest, key rotation, lookup backends and masking."""

from typing import TYPE_CHECKING

from plait.secrets._backends import (
    SecretResolver,
    check_name,
    env_backend_factory,
    file_backend_factory,
)
from plait.secrets._crypto import KeyRing, MasterKey, Sealed, SecretDecryptionError
from plait.secrets._keys import ENV_KEY, ENV_KEY_FILE, load_key_ring, read_key_file, write_key_file
from plait.secrets._masking import MASK, Masker, variants

if TYPE_CHECKING:  # imported lazily below, at run time
    from plait.secrets._store import SecretInfo, SecretStore

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "MASK",
    "KeyRing",
    "Masker",
    "MasterKey",
    "Sealed",
    "SecretDecryptionError",
    "SecretInfo",
    "SecretResolver",
    "SecretStore",
    "check_name",
    "env_backend_factory",
    "file_backend_factory",
    "load_key_ring",
    "read_key_file",
    "variants",
    "write_key_file",
]


def __getattr__(name: str) -> object:
    # The store needs SQLAlchemy; importing it lazily keeps `plait.secrets` (masking, crypto)
    # light for the code paths that only mask.
    if name in ("SecretStore", "SecretInfo"):
        from plait.secrets import _store

        return getattr(_store, name)
    raise AttributeError(name)
