"""Keeping an SMTP connection open for the next message to the same host.

The scheduler delivers a domain's batches one after another; when a batch
is done its session is parked here for a few seconds, and the next batch for
the same host (same address, port and TLS policy) continues on it instead of
connecting again (the SMTP client pipelines RSET in front of the next MAIL).
Idle sessions are closed with QUIT after ``idle`` seconds; a session that
carried ``max_messages`` transactions is closed instead of parked, so one
connection is not kept forever (Postfix's smtp_connection_reuse_count_limit
plays the same part; RFC 9422 MAILMAX is honoured by the client itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kittiwake.queue.metrics import connections

Key = tuple[Any, ...]

MAX_MESSAGES = 100  # transactions per connection before it is closed


MAX_IDLE_PER_KEY = 32  # parked sessions per destination (relay: shared by all domains)


class ConnectionPool:
    """Parked sessions by key (destination address, port, TLS policy, identity).

    A relay serves every domain, so several sessions to it can be parked at
    once (up to ``max_idle`` per key): each of the scheduler's parallel
    domain workers finds one instead of replacing the others'.
    """

    def __init__(self, idle: float = 5.0, max_messages: int = MAX_MESSAGES,
                 max_idle: int = MAX_IDLE_PER_KEY) -> None:
        self.idle = idle
        self.max_messages = max(1, max_messages)
        self.max_idle = max(1, max_idle)
        self._parked: dict[Key, list[tuple[Any, float]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self.reused = 0

    def take(self, key: Key) -> Any | None:
        """A parked, still open session for ``key`` (removed from the pool)."""
        parked = self._parked.get(key)
        now = time.monotonic()
        while parked:
            client, expires = parked.pop()  # the most recently used first
            if client.closed or now > expires:
                self._quit(client)
                continue
            if not parked:
                del self._parked[key]
            self.reused += 1
            connections("reused").inc()
            return client
        self._parked.pop(key, None)
        return None

    def give(self, key: Key, client: Any) -> None:
        """Park an open session; beyond ``max_idle`` for the key the oldest is closed.
        A session that carried ``max_messages`` transactions is closed instead."""
        if client.closed:
            return
        if getattr(client, "transactions", 0) >= self.max_messages:
            connections("retired").inc()
            self._quit(client)
            return
        parked = self._parked.setdefault(key, [])
        parked.append((client, time.monotonic() + self.idle))
        while len(parked) > self.max_idle:
            self._quit(parked.pop(0)[0])
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self.idle + 0.1, self._expire)

    @staticmethod
    def opened() -> None:
        """Count a new connection (the caller connected because nothing was parked)."""
        connections("new").inc()

    def _expire(self) -> None:
        self._sweep = None
        now = time.monotonic()
        for key in list(self._parked):
            keep = []
            for client, expires in self._parked[key]:
                if now > expires or client.closed:
                    self._quit(client)
                else:
                    keep.append((client, expires))
            if keep:
                self._parked[key] = keep
            else:
                del self._parked[key]
        if self._parked:
            soonest = min(e for entries in self._parked.values() for _, e in entries)
            self._sweep = asyncio.get_running_loop().call_later(
                max(soonest - now, 0) + 0.1, self._expire)

    def _quit(self, client: Any) -> None:
        task = asyncio.get_running_loop().create_task(client.quit())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for entries in self._parked.values():
            for client, _ in entries:
                with contextlib.suppress(Exception):
                    await client.quit()
        self._parked.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
