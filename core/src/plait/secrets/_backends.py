"""Secret backends shipped with the core (environment, files) and the resolver over them all."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plait_sdk import SecretBackend, UserError

ENV_PREFIX = "PLAIT_SECRET_"
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise UserError(
            f"invalid secret name {name!r}: letters, digits, '_', '.', '-' (starting with a "
            "letter or '_'), at most 128 characters"
        )
    return name


def namespace_chain(namespace: str) -> list[str]:
    """``a.b.c`` -> ``["a.b.c", "a.b", "a"]``: nearest first."""
    parts = namespace.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


class EnvSecretBackend(SecretBackend):
    """``PLAIT_SECRET_<NAME>`` environment variables, base64-encoded (as Kestra does).

    Visible from every namespace. A value that is not valid base64 is refused with a message
    naming the variable, rather than used as is, so a forgotten encoding is noticed at once.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    async def get(self, namespace: str, name: str) -> str | None:
        raw = self._environ.get(ENV_PREFIX + name)
        if raw is None:
            raw = self._environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            return None
        try:
            return base64.b64decode(raw.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UserError(
                f"environment variable {ENV_PREFIX}{name} is not base64-encoded UTF-8 "
                f"(encode it: echo -n VALUE | base64)"
            ) from None


class FileSecretBackend(SecretBackend):
    """One file per secret under ``<root>/<namespace>/<NAME>`` (Kubernetes- or Docker-mounted).

    Namespaces inherit: ``company.team`` sees ``<root>/company.team/X``, then ``<root>/company/X``,
    then ``<root>/X`` (global). A trailing newline is stripped.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    async def get(self, namespace: str, name: str) -> str | None:
        return await asyncio.to_thread(self._read, namespace, check_name(name))

    def _read(self, namespace: str, name: str) -> str | None:
        for candidate in [
            *(self.root / ns / name for ns in namespace_chain(namespace)),
            self.root / name,
        ]:
            if candidate.is_file():
                return candidate.read_text("utf-8").removesuffix("\n")
        return None


class SecretNotFound(UserError):
    """No backend knows the secret."""


class SecretResolver:
    """Asks each backend in order; the first that knows the name wins."""

    def __init__(self, backends: Sequence[tuple[str, SecretBackend]]) -> None:
        self.backends = list(backends)

    async def get(self, namespace: str, name: str) -> str:
        check_name(name)
        for _, backend in self.backends:
            value = await backend.get(namespace, name)
            if value is not None:
                return value
        where = ", ".join(label for label, _ in self.backends) or "no backend configured"
        raise SecretNotFound(
            f"secret '{name}' not found for namespace '{namespace}' (looked in: {where})"
        )

    async def close(self) -> None:
        for _, backend in self.backends:
            await backend.close()


def env_backend_factory(config: dict[str, Any]) -> SecretBackend:
    return EnvSecretBackend()


def file_backend_factory(config: dict[str, Any]) -> SecretBackend:
    root = config.get("path") or os.environ.get("PLAIT_SECRETS_DIR")
    if not root:
        raise UserError("the file secret backend needs a directory: set PLAIT_SECRETS_DIR")
    return FileSecretBackend(Path(root))
