"""The encrypted secret store over a real SQLite database, and secrets in real flow runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backends import Backend
from plait.secrets import KeyRing, MasterKey, SecretDecryptionError
from plait.secrets._store import SecretStore
from plait.storage import SqlRepository
from plait_sdk import UserError

PLAIT = str(Path(sys.executable).parent / "plait")
VALUE = "correct-horse-battery-staple"


@pytest.fixture
async def repo(backend: Backend) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    yield repo
    await repo.close()


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([MasterKey.generate()])


async def test_values_are_ciphertext_at_rest(
    repo: SqlRepository, ring: KeyRing, backend: Backend, tmp_path: Path
) -> None:
    store = SecretStore(repo, ring)
    await store.set("acme", "DB_PASSWORD", VALUE)
    assert await store.get("acme", "DB_PASSWORD") == VALUE
    rows = await asyncio.to_thread(
        backend.execute, "SELECT namespace, name, ciphertext FROM secrets"
    )
    assert len(rows) == 1
    assert VALUE.encode() not in bytes(rows[0][2])
    if backend.name == "sqlite":  # the whole database file, WAL included
        await repo.close()
        raw = await asyncio.to_thread(_read_all, tmp_path)
        assert VALUE.encode() not in raw
        await repo.open()


def _read_all(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("plait.db*"))


async def test_namespace_inheritance_nearest_wins(repo: SqlRepository, ring: KeyRing) -> None:
    store = SecretStore(repo, ring)
    await store.set("company", "TOKEN", "company-level")
    await store.set("company.team", "TOKEN", "team-level")
    await store.set("company", "ONLY_TOP", "top")
    assert await store.get("company.team.project", "TOKEN") == "team-level"
    assert await store.get("company.other", "TOKEN") == "company-level"
    assert await store.get("company.team.project", "ONLY_TOP") == "top"
    assert await store.get("elsewhere", "TOKEN") is None
    names = [(i.namespace, i.name) for i in await store.names("company.team")]
    assert names == [("company.team", "TOKEN")]


async def test_tampered_and_swapped_rows_are_detected(
    repo: SqlRepository, ring: KeyRing, backend: Backend
) -> None:
    store = SecretStore(repo, ring)
    await store.set("a", "ONE", "first")
    await store.set("a", "TWO", "second")

    def swap_and_flip() -> None:
        ((one,),) = backend.execute("SELECT ciphertext FROM secrets WHERE name = 'ONE'")
        backend.execute("UPDATE secrets SET ciphertext = %s WHERE name = 'TWO'", (bytes(one),))
        flipped = bytearray(one)
        flipped[-1] ^= 1
        backend.execute("UPDATE secrets SET ciphertext = %s WHERE name = 'ONE'", (bytes(flipped),))

    await asyncio.to_thread(swap_and_flip)
    with pytest.raises(SecretDecryptionError, match="altered or belongs to another secret"):
        await store.get("a", "TWO")  # a ciphertext moved from another secret
    with pytest.raises(SecretDecryptionError, match="altered"):
        await store.get("a", "ONE")  # a flipped bit


async def test_wrong_key_gives_a_clear_error(repo: SqlRepository, ring: KeyRing) -> None:
    await SecretStore(repo, ring).set("a", "S", "value")
    other = SecretStore(repo, KeyRing([MasterKey.generate()]))
    with pytest.raises(SecretDecryptionError, match="not configured"):
        await other.get("a", "S")


async def test_rotation_under_concurrent_reads(repo: SqlRepository, ring: KeyRing) -> None:
    store = SecretStore(repo, ring)
    values = {f"S{i}": f"value-{i}" for i in range(60)}
    for name, value in values.items():
        await store.set("rot", name, value)
    old_id = ring.primary_id
    new = MasterKey.generate()
    readers_ok = 0
    stop = asyncio.Event()

    async def reader() -> None:
        nonlocal readers_ok
        while not stop.is_set():
            for name, value in list(values.items())[:10]:
                assert await store.get("rot", name) == value
                readers_ok += 1

    task = asyncio.create_task(reader())
    store.ring = KeyRing([new, _key(ring, old_id)], new.id)
    changed = await store.reseal_all(batch=7)
    stop.set()
    await task
    assert changed == 60
    assert readers_ok > 0
    assert await store.keys_in_use() == {new.id: 60}
    for name, value in values.items():
        assert await store.get("rot", name) == value
    # the old key alone can no longer read anything
    with pytest.raises(SecretDecryptionError):
        await SecretStore(repo, KeyRing([_key(ring, old_id)])).get("rot", "S0")


def _key(ring: KeyRing, key_id: str) -> MasterKey:
    return ring._keys[key_id]


async def test_invalid_names_and_sizes(repo: SqlRepository, ring: KeyRing) -> None:
    store = SecretStore(repo, ring)
    with pytest.raises(UserError, match="invalid secret name"):
        await store.set("a", "bad name", "x")
    with pytest.raises(UserError, match="invalid namespace"):
        await store.set("a..b", "OK", "x")
    with pytest.raises(UserError, match="limit"):
        await store.set("a", "BIG", b"x" * (64 * 1024 + 1))


def _plait(
    home: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "PLAIT_HOME": str(home), **(env or {})}
    full_env.pop("PLAIT_MASTER_KEY", None)
    return subprocess.run(
        [PLAIT, *args], input=stdin, env=full_env, capture_output=True, timeout=60
    )


def test_cli_secrets_and_a_flow_using_every_backend(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _plait(home, "secrets", "set", "company.team", "DB_PASSWORD", stdin=b"pg-Pa55word\n")
    assert result.returncode == 0, result.stderr
    assert b"created a new master key" in result.stderr
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert b"pg-Pa55word" not in result.stdout + result.stderr
    (home / "secrets").mkdir()
    (home / "secrets" / "FILE_TOKEN").write_text("file-token-value\n")
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: uses\nnamespace: company.team.app\ntasks:\n"
        "  - id: a\n    type: plait.core.Log\n"
        "    message: \"{{ secret('DB_PASSWORD') }} {{ secret('ENV_TOKEN') }} "
        "{{ secret('FILE_TOKEN') }}\"\n"
        "  - id: b\n    type: plait.core.Return\n"
        "    format: \"{{ secret('DB_PASSWORD') | upper }}\"\n"
    )
    import base64

    env = {"PLAIT_SECRET_ENV_TOKEN": base64.b64encode(b"env-token-value").decode()}
    result = _plait(home, "run", str(flow), "--json", env=env)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    for secret in (b"pg-Pa55word", b"PG-PA55WORD", b"env-token-value", b"file-token-value"):
        assert secret not in everything
    logs = _plait(home, "executions", "list", "--json")
    assert b"pg-Pa55word" not in logs.stdout
    reads = _plait(home, "secrets", "reads")
    assert b"DB_PASSWORD" in reads.stdout
    listing = _plait(home, "secrets", "list", "--json")
    assert b"DB_PASSWORD" in listing.stdout
    assert b"pg-Pa55word" not in listing.stdout
    raw = b"".join(p.read_bytes() for p in home.glob("plait.db*"))
    assert b"pg-Pa55word" not in raw
    assert b"PG-PA55WORD" not in raw


def test_cli_rotate_then_remove_old_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _plait(home, "secrets", "set", "ns", "S", stdin=b"v1").returncode == 0
    old_id = _plait(home, "secrets", "list", "--json").stdout.split(b'"keyId": "')[1][:16].decode()
    rotated = _plait(home, "secrets", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert b"re-encrypted 1 value" in rotated.stderr
    # the old key is now unused: removing it is allowed; the primary is refused
    removed = _plait(home, "secrets", "remove-key", old_id)
    assert removed.returncode == 0, removed.stderr
    keys = [ln for ln in (home / "master.key").read_text().splitlines() if not ln.startswith("#")]
    assert len(keys) == 1
    new_id = MasterKey.parse(keys[0]).id
    refused = _plait(home, "secrets", "remove-key", new_id)
    assert refused.returncode == 1
    assert b"primary" in refused.stderr


def test_cli_remove_key_refused_while_in_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _plait(home, "secrets", "set", "ns", "S", stdin=b"v1").returncode == 0
    old = (home / "master.key").read_text().splitlines()[1]
    new = MasterKey.generate()
    (home / "master.key").write_text(f"{new.encoded()}\n{old}\n")
    (home / "master.key").chmod(0o600)
    refused = _plait(home, "secrets", "remove-key", MasterKey.parse(old).id)
    assert refused.returncode == 1
    assert b"still seals 1 value" in refused.stderr
