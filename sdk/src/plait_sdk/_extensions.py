"""Interfaces for the non-task extension points: secret and storage backends, blueprints."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator

from packaging.version import InvalidVersion, Version
from pydantic import Field, field_validator

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
    Registered with the experimental ``register_storage_backends`` hook.

    Example::

        class MemoryBackend(StorageBackend):
            def __init__(self) -> None:
                self.objects: dict[str, bytes] = {}

            async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
                self.objects[key] = b"".join([chunk async for chunk in data])
                return len(self.objects[key])
            ...  # get, exists, size, delete, list
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

    async def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (a directory-like prefix, without its trailing ``/``),
        sorted. Optional: a backend that cannot list raises ``NotImplementedError`` (then
        PurgeCurrentExecutionFiles cannot run on it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its keys")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once on shutdown."""


BLUEPRINT_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*$"
"""``category.name``: lowercase words joined by ``-``, one dot (``etl.http-to-postgres``).

Example::

    assert re.match(BLUEPRINT_ID_PATTERN, "etl.http-to-postgres")
"""


class Blueprint(Model):
    """A reusable flow offered in the catalogue: deployed whole, or called as a subflow.

    Its inputs and outputs are the flow's own (typed, each with a description). ``plugins``
    names the distributions its flow needs with their minimum versions; a flow calling it with
    one of them missing or too old is refused at validation, saying what to install.

    Example::

        >>> Blueprint(id="demo.hello", title="Hello", flow="id: hello\\nnamespace: demo\\n").id
        'demo.hello'
    """

    id: str = Field(pattern=BLUEPRINT_ID_PATTERN)
    title: str = Field(min_length=1)
    description: str = ""
    """What it does, when to use it and what it needs (Markdown)."""
    tags: list[str] = Field(default_factory=list)
    version: str = "1.0.0"
    """The blueprint's own version (PEP 440), matched by a Subflow's ``version`` range."""
    plugins: dict[str, str] = Field(default_factory=dict)
    """Distribution name -> minimum version, for every plugin its flow uses."""
    example: str = ""
    """A Subflow task calling it (YAML), shown in the docs and validated by the tests."""
    flow: str
    """The flow's YAML source."""

    @field_validator("version")
    @classmethod
    def _pep440(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a version such as 1.0.0") from None
        return value

    @field_validator("plugins")
    @classmethod
    def _minimums(cls, value: dict[str, str]) -> dict[str, str]:
        for dist, minimum in value.items():
            try:
                Version(minimum)
            except InvalidVersion:
                raise ValueError(
                    f"plugin {dist}: {minimum!r} is not a minimum version such as 0.1.0"
                ) from None
        return value
