"""Values derived from secrets, between tasks: kept intact in memory, sealed at rest.

A task's outputs (and a flow's) that hold a secret are marked as :class:`SecretText` when the
task ends: later tasks render the real value, persistence writes the sealed form
(``{"$secret": ..., "$key": ...}``, AES-GCM under the master key ring), every surface a person
reads shows ``******``. Loading an execution to drive it again opens the sealed values, so a
recovered execution hands its later tasks the very same bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from plait.secrets import KeyRing, Masker, Sealed
from plait.templating import SECRET, SECRET_KEY, SecretText, is_sealed

#: The associated data of sealed engine values. They are not bound to one execution: a replay
#: copies them, a subflow hands them to its parent (whoever can write the database can change
#: a flow's source anyway).
_SCOPE, _NAME = "plait.values", "value"


def seal_text(ring: KeyRing, text: str) -> SecretText:
    """``text`` marked sensitive, with its sealed form."""
    if isinstance(text, SecretText) and text.sealed is not None:
        return text
    box = ring.seal(_SCOPE, _NAME, str.__str__(text).encode("utf-8"), limit=None)
    return SecretText.of(
        text, {SECRET: base64.b64encode(box.blob).decode("ascii"), SECRET_KEY: box.key_id}
    )


def mark(ring: KeyRing, masker: Masker, value: Any) -> Any:
    """``value`` with every text holding a known secret (or derived from one) marked sensitive.

    Keys of maps cannot carry a sealed form: one holding a secret is masked.
    """
    if isinstance(value, str):
        if isinstance(value, SecretText) or masker.contains(value):
            return seal_text(ring, value)
        return value
    if isinstance(value, dict):
        return {
            (masker.mask(k) if isinstance(k, str) else k): mark(ring, masker, v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mark(ring, masker, v) for v in value]
    return value


def reveal(ring: KeyRing, value: Any) -> Any:
    """``value`` as stored, with every sealed text opened (and still marked sensitive)."""
    if is_sealed(value):
        box = Sealed(value[SECRET_KEY], base64.b64decode(value[SECRET]))
        return SecretText.of(ring.open(_SCOPE, _NAME, box).decode("utf-8"), dict(value))
    if isinstance(value, dict):
        return {k: reveal(ring, v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(ring, v) for v in value]
    return value


def register(masker: Masker, value: Any) -> None:
    """Teach ``masker`` every sensitive text inside ``value`` (a recovered execution's)."""
    if isinstance(value, SecretText):
        masker.add(str.__str__(value))
    elif isinstance(value, dict):
        for item in value.values():
            register(masker, item)
    elif isinstance(value, list):
        for item in value:
            register(masker, item)
