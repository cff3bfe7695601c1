"""Kestra's file functions in templates: ``read``, ``fileSize``, ``fileExists``, ``isFileEmpty``.

They take an internal-storage URI (``plait:///...``) that a task produced, read through the
execution's own storage view, so a template reaches exactly the files a task of that execution
could open: its own and, for a subflow, its parent's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from plait_sdk import UserError

from plait.files import ExecutionStorage, StorageError

#: ``read()`` puts a whole file in memory and in the rendered value; beyond this, pass the URI
#: to a task that streams it instead.
READ_LIMIT = 32 * 1024 * 1024


class TemplateFiles:
    """The file functions of one render, over one execution's storage view."""

    def __init__(
        self,
        storage: Callable[[], ExecutionStorage],
        namespace_file: Callable[[str], Awaitable[bytes | None]] | None = None,
    ) -> None:
        # Made on first use: most renders call no file function.
        self._make = storage
        self._view: ExecutionStorage | None = None
        #: Kestra's ``read('scripts/q.sql')``: a path that is not a URI names a namespace file
        #: of the flow's namespace.
        self._namespace_file = namespace_file

    @property
    def _storage(self) -> ExecutionStorage:
        if self._view is None:
            self._view = self._make()
        return self._view

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {
            "read": self.read,
            "fileSize": self.file_size,
            "fileExists": self.file_exists,
            "isFileEmpty": self.is_file_empty,
        }

    async def read(self, uri: Any) -> str:
        """The file's content as UTF-8 text: a ``plait:///`` URI of internal storage, or the path
        of a namespace file (``scripts/q.sql``, ``nsfile:///scripts/q.sql``)."""
        if isinstance(uri, str) and not uri.startswith("plait://") and self._namespace_file:
            path = uri.removeprefix("nsfile://")
            found = await self._namespace_file(path)
            if found is None:
                raise UserError(f"read({uri!s}): no such namespace file")
            if len(found) > READ_LIMIT:
                raise UserError(f"read({uri!s}): the file is larger than templates read")
            try:
                return found.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"read({uri!s}): the file is not UTF-8 text") from None
        size = await self._storage.size(_uri("read", uri))
        if size > READ_LIMIT:
            raise UserError(
                f"read({uri!s}): the file is {size} bytes; templates read at most "
                f"{READ_LIMIT // (1024 * 1024)} MiB (give the URI to a task instead)"
            )
        data = await self._storage.read_bytes(_uri("read", uri))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"read({uri!s}): the file is not UTF-8 text") from None

    async def file_size(self, uri: Any) -> int:
        """The file's size in bytes."""
        return await self._storage.size(_uri("fileSize", uri))

    async def file_exists(self, uri: Any) -> bool:
        """Whether the file exists (a URI outside the execution's storage is an error)."""
        try:
            await self._storage.size(_uri("fileExists", uri))
        except StorageError as error:
            if str(error).endswith("does not exist"):
                return False
            raise
        return True

    async def is_file_empty(self, uri: Any) -> bool:
        """Whether the file has no content."""
        return await self.file_size(uri) == 0


def _uri(function: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("plait://"):
        raise UserError(
            f"{function}(): expected an internal storage URI (plait:///...), "
            f"got {str(value)[:200]!r}"
        )
    return value
