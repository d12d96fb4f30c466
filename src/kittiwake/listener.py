"""A TCP listener on some IPs that runs each connection in a task of its own.

:class:`Listener` does what every service (SMTP, IMAP) needs around its
sessions: bind with the configured backlog (and TLS for implicit-TLS
services), keep the tasks of open sessions, and on close stop accepting, give
the sessions ``grace`` seconds, then cancel the rest. Subclasses implement
:meth:`Listener.serve`, which owns one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

__all__ = ["Listener"]


class Listener:
    """Accepts on ``ips``:``port``; :meth:`serve` handles each connection."""

    def __init__(self, name: str, ips: list[str], port: int, backlog: int = 1024) -> None:
        self.name = name
        self.ips = ips
        self.port = port
        self.backlog = backlog
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound: list[str] = []

    async def listen(self, tls: ssl.SSLContext | None = None) -> None:
        """Bind every address; OSError when one is taken."""
        for ip in self.ips:
            server = await asyncio.start_server(self._accept, ip, self.port, ssl=tls,
                                                reuse_address=True, limit=1 << 20,
                                                backlog=self.backlog,
                                                ssl_handshake_timeout=30 if tls else None)
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def open_sessions(self) -> int:
        """Connections being served (refused ones are gone at once)."""
        return len(self._tasks)

    async def close(self, grace: float) -> None:
        for server in self._servers:
            server.close()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    def addresses(self) -> list[str]:
        """Where it listens, for the start-up log (e.g. "127.0.0.1:25")."""
        return list(self._bound)
