"""Execution and task-run ids: 26 base-32 digits of (48-bit ms time, 16-bit sequence, 80 random
bits), sorted by creation, and never repeated by a forked child."""

from __future__ import annotations

import os
import re

from plait.records import new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_ids_encode_time_sequence_and_random_bits_in_order() -> None:
    ids = [new_id() for _ in range(3000)]
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    values = [_decode(i) for i in ids]
    assert all(v >> 128 == 0 for v in values)
    # Within one millisecond the sequence counts up; the random parts differ.
    by_ms: dict[int, list[int]] = {}
    for v in values:
        by_ms.setdefault(v >> 80, []).append(v)
    for same_ms in by_ms.values():
        sequences = [(v >> 64) & 0xFFFF for v in same_ms]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    assert len({v & ((1 << 64) - 1) for v in values}) == len(values)


def test_a_forked_child_does_not_reuse_the_parents_random_bits() -> None:
    new_id()  # the parent has random bytes pooled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_id()
    random_bits = (1 << 64) - 1
    assert _decode(child) & random_bits != _decode(parent) & random_bits
