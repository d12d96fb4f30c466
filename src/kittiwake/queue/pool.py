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

from kittiwake.queue.metrics import CONNECTIONS

Key = tuple[Any, ...]

MAX_MESSAGES = 100  # transactions per connection before it is closed


class ConnectionPool:
    def __init__(self, idle: float = 5.0, max_messages: int = MAX_MESSAGES) -> None:
        self.idle = idle
        self.max_messages = max(1, max_messages)
        self._parked: dict[Key, tuple[Any, float]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.reused = 0

    def take(self, key: Key) -> Any | None:
        """A parked, still open session for ``key`` (removed from the pool)."""
        entry = self._parked.pop(key, None)
        if entry is None:
            return None
        client, expires = entry
        if client.closed or time.monotonic() > expires:
            self._quit(client)
            return None
        self.reused += 1
        CONNECTIONS.labels(use="reused").inc()
        return client

    def give(self, key: Key, client: Any) -> None:
        """Park an open session; an older one for the same key is closed."""
        if client.closed:
            return
        if getattr(client, "transactions", 0) >= self.max_messages:
            CONNECTIONS.labels(use="retired").inc()
            self._quit(client)
            return
        old = self._parked.pop(key, None)
        if old is not None:
            self._quit(old[0])
        self._parked[key] = (client, time.monotonic() + self.idle)
        asyncio.get_running_loop().call_later(self.idle + 0.1, self._expire)

    @staticmethod
    def opened() -> None:
        """Count a new connection (the caller connected because nothing was parked)."""
        CONNECTIONS.labels(use="new").inc()

    def _expire(self) -> None:
        now = time.monotonic()
        for key, (client, expires) in list(self._parked.items()):
            if now > expires:
                del self._parked[key]
                self._quit(client)

    def _quit(self, client: Any) -> None:
        task = asyncio.get_running_loop().create_task(client.quit())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for client, _ in self._parked.values():
            with contextlib.suppress(Exception):
                await client.quit()
        self._parked.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
