"""Authenticated encryption of secret values under a ring of master keys.

AES-256-GCM with a fresh 96-bit nonce per value. The namespace and name are bound as associated
data, so a ciphertext copied onto another secret's row fails to decrypt instead of leaking. Each
ciphertext records the id of the key that sealed it; the ring keeps every known key so values
sealed under an old key stay readable while a rotation re-encrypts them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as _random
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from plait_sdk import UserError

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"
MAX_VALUE_BYTES = 64 * 1024


class SecretDecryptionError(UserError):
    """A value could not be decrypted: wrong or missing key, tampering, or a moved ciphertext."""


@dataclass(frozen=True)
class MasterKey:
    """One AES-256 key and its id (16 hex digits of a SHA-256 of it, not secret)."""

    material: bytes

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise UserError(f"a master key is {KEY_BYTES} bytes (got {len(self.material)})")

    @property
    def id(self) -> str:
        return hashlib.sha256(b"plait-key-id:" + self.material).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(_random.token_bytes(KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> MasterKey:
        """A key written as url-safe base64 (what :meth:`encoded` and the key file hold)."""
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
        except (ValueError, UnicodeEncodeError) as error:
            raise UserError("a master key must be url-safe base64 of 32 bytes") from error
        return cls(raw)

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Sealed:
    """A ciphertext and the id of the key that sealed it."""

    key_id: str
    blob: bytes


class KeyRing:
    """The known master keys; the *primary* one seals, every one of them opens."""

    def __init__(self, keys: Iterable[MasterKey], primary: str | None = None) -> None:
        self._keys = {k.id: k for k in keys}
        if not self._keys:
            raise UserError("no master key configured (set PLAIT_MASTER_KEY or a key file)")
        self.primary_id = primary or next(iter(self._keys))
        if self.primary_id not in self._keys:
            raise UserError(f"the primary key {self.primary_id} is not in the key ring")

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def seal(
        self, namespace: str, name: str, value: bytes, *, limit: int | None = MAX_VALUE_BYTES
    ) -> Sealed:
        """Encrypt under the primary key; ``limit=None`` for engine values (a task's output
        holding a secret may be large), the store keeps its limit on secrets."""
        if limit is not None and len(value) > limit:
            raise UserError(
                f"secret {namespace}/{name} is {len(value)} bytes; the limit is {limit}"
            )
        key = self._keys[self.primary_id]
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key.material).encrypt(nonce, value, _aad(namespace, name, key.id))
        return Sealed(key.id, FORMAT_VERSION + nonce + ciphertext)

    def open(self, namespace: str, name: str, sealed: Sealed) -> bytes:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise SecretDecryptionError(
                f"secret {namespace}/{name} is sealed with key {sealed.key_id}, which is not "
                "configured (check PLAIT_MASTER_KEY / the key file)"
            )
        blob = sealed.blob
        if blob[:1] != FORMAT_VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise SecretDecryptionError(f"secret {namespace}/{name}: unknown ciphertext format")
        nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return AESGCM(key.material).decrypt(nonce, ciphertext, _aad(namespace, name, key.id))
        except InvalidTag:
            raise SecretDecryptionError(
                f"secret {namespace}/{name} failed authentication: the stored value was altered "
                "or belongs to another secret"
            ) from None

    def reseal(self, namespace: str, name: str, sealed: Sealed) -> Sealed:
        """Re-encrypt under the primary key (no-op when already there)."""
        if sealed.key_id == self.primary_id:
            return sealed
        return self.seal(namespace, name, self.open(namespace, name, sealed))


def _aad(namespace: str, name: str, key_id: str) -> bytes:
    # Length-prefixed so ("a.b", "c") and ("a", "b.c") can never produce the same bytes.
    parts = [namespace.encode(), name.encode(), key_id.encode()]
    return b"plait-secret-v1" + b"".join(len(p).to_bytes(4, "big") + p for p in parts)
