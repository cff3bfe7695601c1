"""Values read from the database, kept while its change counter has not moved."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ChangeCache(Generic[K, V]):
    """Answers read at one value of :meth:`plait.storage.SqlRepository.changes`, dropped all
    at once when it moves. ``version`` is read BEFORE the value is: a change committed in
    between leaves the value tagged with the old version, which the next look discards.

    Example::

        version = await repo.changes()
        found = cache.get(version, key)
        if found is None:
            found = await read(key)
            cache.put(version, key, found)
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._version: int | None = None
        self._items: dict[K, V] = {}

    def get(self, version: int, key: K) -> V | None:
        if version != self._version:
            if self._version is None or version > self._version:
                self._items.clear()
                self._version = version
            return None
        return self._items.get(key)

    def put(self, version: int, key: K, value: V) -> None:
        if version != self._version:
            return  # read at another version than the one kept: not worth keeping
        if len(self._items) >= self.limit:  # many distinct keys: start again, bounded
            self._items.clear()
        self._items[key] = value
