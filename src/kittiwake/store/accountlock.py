"""The account's lock, which tells its holder when someone is waiting.

An account has one SQLite connection, used under one re-entrant lock by every
reader and writer. Most hold it for a statement or two; the background
indexer's transactions (trigram and full-text inserts) take milliseconds per
message, and a delivery's commit waiting behind a batch of them delays every
250 of the group. With :attr:`AccountLock.wanted`, such long work ends its
transaction as soon as someone waits and goes on after them, so its
transactions are as large as possible when nobody waits (fewer, larger
full-text segments) and short when somebody does.
"""

from __future__ import annotations

import threading
from types import TracebackType


class AccountLock:
    """A re-entrant lock (``with lock:``) that counts the threads waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._got_in = threading.Condition(self._count)  # a waiter has the lock now
        self._waiting = 0

    @property
    def wanted(self) -> bool:
        """Whether another thread is waiting for the lock now (for its holder)."""
        return self._waiting > 0

    def __enter__(self) -> AccountLock:
        if self._lock.acquire(blocking=False):  # the usual case: nobody holds it
            return self
        with self._count:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count:
                self._waiting -= 1
                self._got_in.notify_all()
        return self

    def let_waiters_in(self, timeout: float = 0.05) -> None:
        """After a release: wait (at most ``timeout`` seconds) until the threads
        waiting now have had the lock, so that taking it again at once does not
        leave them waiting (a lock hands itself to no one in particular)."""
        with self._count:
            self._got_in.wait_for(lambda: self._waiting == 0, timeout)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release()
