"""Bounded caches of facts derived from stored messages (which never change).

Keys name a message by its account's directory, row id, save time and size
(the store may give an expunged message's row id to a later message, never
with the same save time and size). Shared by all sessions, used from worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from kittiwake.store.messagefile import MessageFile

__all__ = ["LRU", "Bounded", "MessageKey"]

K = TypeVar("K")
V = TypeVar("V")

MessageKey = tuple[str, int, int, int]  # account directory, message id, saved (ms), size


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used map of at most ``size`` entries, and with
    ``weight`` of at most about ``max_bytes`` (the least recently used go first)."""

    def __init__(self, size: int, max_bytes: int = 0,
                 weight: Callable[[V], int] | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._weight = weight
        self._bytes = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        weigh = self._weight
        with self._lock:
            old = self._data.get(key)
            if weigh is not None:
                self._bytes += weigh(value) - (weigh(old) if old is not None else 0)
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size or (
                    weigh is not None and self._bytes > self.max_bytes and len(self._data) > 1):
                _key, dropped = self._data.popitem(last=False)
                if weigh is not None:
                    self._bytes -= weigh(dropped)

    def __len__(self) -> int:
        return len(self._data)


class Bounded(Generic[K, V]):
    """A thread-safe map of (space, message id) to values, holding at most about
    ``max_bytes`` (by ``weight``); the oldest entries go first.

    A space (an account directory, with the field names of a FETCH item) is a
    plain dict from message id to value: a reader takes it once (:meth:`space`)
    and looks messages up in it without a lock or a tuple key, as fast as a
    dict lookup, which suits a value read once per message of a big FETCH.
    """

    def __init__(self, max_bytes: int, weight: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._weight = weight
        self._spaces: dict[K, dict[int, V]] = {}
        self._order: deque[tuple[K, int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def space(self, key: K) -> dict[int, V]:
        """The values of one space (read it, do not write it: :meth:`put`)."""
        found = self._spaces.get(key)
        if found is None:
            with self._lock:
                if len(self._spaces) >= MAX_SPACES:
                    self._clear()
                found = self._spaces.setdefault(key, {})
        return found

    def put(self, key: K, message_id: int, value: V) -> None:
        size = self._weight(value)
        space = self.space(key)
        with self._lock:
            old = space.get(message_id)
            if old is not None:
                self._bytes -= self._weight(old)
            else:
                self._order.append((key, message_id))
            space[message_id] = value
            self._bytes += size
            self._evict()

    def resize(self, max_bytes: int) -> None:
        """Hold at most ``max_bytes`` from now on (the oldest entries go at once)."""
        with self._lock:
            self.max_bytes = max_bytes
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._order:
            k, i = self._order.popleft()
            gone = self._spaces.get(k, {}).pop(i, None)
            if gone is not None:
                self._bytes -= self._weight(gone)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        for space in self._spaces.values():
            space.clear()  # readers holding a space see it empty
        self._spaces.clear()
        self._order.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return sum(len(s) for s in self._spaces.values())


MAX_SPACES = 1000  # spaces of a Bounded (more are unlikely: all go then)


# The first octets of recently read message files (their header sections):
# message key -> octets from the file's start. FETCH HEADER.FIELDS and header
# SEARCH keys read these again and again.
HEADS: LRU[MessageKey, bytes] = LRU(20_000, 16 * 1024 * 1024, len)


def read_head(key: MessageKey, source: MessageFile, length: int) -> bytes:
    """The first ``length`` octets of the message, from :data:`HEADS` if there."""
    cached = HEADS.get(key)
    if cached is not None and len(cached) >= length:
        return cached[:length]
    data = source.read(0, length)
    if len(data) == length and length <= 64 * 1024:
        HEADS.put(key, data)
    return data
