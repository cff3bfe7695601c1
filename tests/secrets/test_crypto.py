import pytest
from plait.secrets._crypto import KeyRing, MasterKey, Sealed, SecretDecryptionError
from plait_sdk import UserError


def ring(*keys: MasterKey) -> KeyRing:
    return KeyRing(keys, keys[0].id)


def test_round_trip_and_fresh_nonce_per_value() -> None:
    key = MasterKey.generate()
    kr = ring(key)
    a = kr.seal("company.team", "DB_PASSWORD", b"hunter2")
    b = kr.seal("company.team", "DB_PASSWORD", b"hunter2")
    assert a.blob != b.blob  # a fresh nonce each time
    assert b"hunter2" not in a.blob
    assert kr.open("company.team", "DB_PASSWORD", a) == b"hunter2"
    assert a.key_id == key.id


def test_ciphertext_moved_to_another_secret_is_refused() -> None:
    kr = ring(MasterKey.generate())
    sealed = kr.seal("company", "A", b"value-a")
    with pytest.raises(SecretDecryptionError, match="altered or belongs to another secret"):
        kr.open("company", "B", sealed)
    with pytest.raises(SecretDecryptionError):
        kr.open("other", "A", sealed)


def test_namespace_and_name_boundaries_cannot_be_shifted() -> None:
    # Same bytes once joined ("abc"): only the length prefixes tell the two apart.
    kr = ring(MasterKey.generate())
    sealed = kr.seal("ab", "c", b"v")
    assert kr.open("ab", "c", sealed) == b"v"
    with pytest.raises(SecretDecryptionError, match="altered or belongs to another secret"):
        kr.open("a", "bc", sealed)


@pytest.mark.parametrize("position", [0, 5, 13, -1])
def test_tampered_ciphertext_is_detected(position: int) -> None:
    kr = ring(MasterKey.generate())
    sealed = kr.seal("ns", "N", b"some secret value")
    blob = bytearray(sealed.blob)
    blob[position] ^= 0x01
    with pytest.raises(SecretDecryptionError):
        kr.open("ns", "N", Sealed(sealed.key_id, bytes(blob)))


def test_wrong_key_gives_a_clear_error_not_garbage() -> None:
    sealed = ring(MasterKey.generate()).seal("ns", "N", b"x" * 10)
    other = ring(MasterKey.generate())
    with pytest.raises(SecretDecryptionError, match="not configured"):
        other.open("ns", "N", sealed)


def test_rotation_reseals_under_the_primary_and_old_values_stay_readable() -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    sealed_old = ring(old).seal("ns", "N", b"v1")
    both = KeyRing([new, old], new.id)
    assert both.open("ns", "N", sealed_old) == b"v1"
    resealed = both.reseal("ns", "N", sealed_old)
    assert resealed.key_id == new.id
    assert ring(new).open("ns", "N", resealed) == b"v1"
    assert both.reseal("ns", "N", resealed) is resealed


def test_key_encoding_round_trip_and_bad_keys() -> None:
    key = MasterKey.generate()
    assert MasterKey.parse(key.encoded()) == key
    with pytest.raises(UserError, match="32 bytes"):
        MasterKey(b"short")
    with pytest.raises(UserError):
        MasterKey.parse("not base64 at all!!")
    with pytest.raises(UserError, match="no master key"):
        KeyRing([])


def test_value_size_limit() -> None:
    with pytest.raises(UserError, match="limit"):
        ring(MasterKey.generate()).seal("ns", "BIG", b"x" * (64 * 1024 + 1))
