"""Interfaces for the non-task extension points: secret and storage backends, blueprints."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator

from pydantic import Field

from plait_sdk._models import Model


class SecretBackend(abc.ABC):
    """A place secrets are read from (the encrypted store, environment variables, files...).

    Backends are asked in the configured order; the first that knows a name wins.

    Example::

        class EnvSecrets(SecretBackend):
            async def get(self, namespace: str, name: str) -> str | None:
                return os.environ.get(f"PLAIT_SECRET_{name}")
    """

    @abc.abstractmethod
    async def get(self, namespace: str, name: str) -> str | None:
        """The value of ``name`` visible from ``namespace``, or ``None`` when unknown here."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; called once on shutdown."""


class StorageBackend(abc.ABC):
    """Raw object storage behind internal storage (local disk by default, S3 through a plugin).

    Keys are relative paths; the core enforces per-execution prefixes before calling these.
    """

    @abc.abstractmethod
    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        """Write the stream to ``key`` atomically and return the number of bytes written."""

    @abc.abstractmethod
    def get(self, key: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream the object at ``key``; raises ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    async def size(self, key: str) -> int:
        """Size of ``key`` in bytes; raises ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete ``key``; True when something was deleted."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once on shutdown."""


class Blueprint(Model):
    """A reusable subflow or flow template offered in the catalogue.

    Example::

        >>> Blueprint(id="hello", title="Hello", flow="id: hello\\nnamespace: demo\\n").id
        'hello'
    """

    id: str
    title: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    flow: str
    """The flow's YAML source."""
