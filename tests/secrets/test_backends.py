import base64
from pathlib import Path

import pytest
from plait.secrets._backends import (
    EnvSecretBackend,
    FileSecretBackend,
    SecretNotFound,
    SecretResolver,
    namespace_chain,
)
from plait_sdk import UserError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_namespace_chain_is_nearest_first() -> None:
    assert namespace_chain("company.team.project") == [
        "company.team.project",
        "company.team",
        "company",
    ]


async def test_env_backend_decodes_base64_like_kestra() -> None:
    backend = EnvSecretBackend({"PLAIT_SECRET_API_TOKEN": b64("tok-123")})
    assert await backend.get("any.namespace", "API_TOKEN") == "tok-123"
    assert await backend.get("any", "MISSING") is None


async def test_env_backend_refuses_a_value_that_is_not_base64() -> None:
    backend = EnvSecretBackend({"PLAIT_SECRET_BAD": "not base64!"})
    with pytest.raises(UserError, match="PLAIT_SECRET_BAD is not base64"):
        await backend.get("ns", "BAD")


async def test_file_backend_inherits_from_parent_namespaces(tmp_path: Path) -> None:
    (tmp_path / "company").mkdir()
    (tmp_path / "company.team").mkdir()
    (tmp_path / "company" / "DB").write_text("parent\n")
    (tmp_path / "company.team" / "DB").write_text("nearest\n")
    (tmp_path / "GLOBAL").write_text("everywhere")
    backend = FileSecretBackend(tmp_path)
    assert await backend.get("company.team.project", "DB") == "nearest"
    assert await backend.get("company.other", "DB") == "parent"
    assert await backend.get("elsewhere", "DB") is None
    assert await backend.get("elsewhere", "GLOBAL") == "everywhere"


async def test_file_backend_refuses_names_that_could_escape(tmp_path: Path) -> None:
    backend = FileSecretBackend(tmp_path)
    for name in ["../etc/passwd", "a/b", "", ".hidden"]:
        with pytest.raises(UserError, match="invalid secret name"):
            await backend.get("ns", name)


async def test_resolver_asks_backends_in_order_and_names_them_when_missing(tmp_path: Path) -> None:
    (tmp_path / "X").write_text("from-file")
    env = EnvSecretBackend({"PLAIT_SECRET_X": b64("from-env")})
    first_env = SecretResolver([("env", env), ("file", FileSecretBackend(tmp_path))])
    first_file = SecretResolver([("file", FileSecretBackend(tmp_path)), ("env", env)])
    assert await first_env.get("ns", "X") == "from-env"
    assert await first_file.get("ns", "X") == "from-file"
    with pytest.raises(SecretNotFound, match=r"secret 'NOPE' not found .*looked in: env, file"):
        await first_env.get("ns", "NOPE")
