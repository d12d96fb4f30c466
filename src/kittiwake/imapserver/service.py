"""An IMAP listener: imap (143, STARTTLS) or imaps (993, implicit TLS, RFC 8314)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from kittiwake import log
from kittiwake.imapserver import metrics as m
from kittiwake.imapserver.connection import IMAPConnection
from kittiwake.imapserver.context import IMAPContext
from kittiwake.limits import Refusal, Slot

_REFUSED = b"* BYE [UNAVAILABLE] too many connections, try again later\r\n"


class IMAPService:
    """Accepts connections on some IPs and runs each session in a task."""

    def __init__(self, ctx: IMAPContext, kind: str, ips: list[str], port: int,
                 backlog: int = 1024) -> None:
        self.ctx = ctx
        self.kind = kind
        self.name = kind
        self.ips = ips
        self.port = port
        self.backlog = backlog
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound: list[str] = []

    async def start(self) -> None:
        tls: ssl.SSLContext | None = None
        if self.kind == "imaps":
            if self.ctx.tls_context is None:
                raise OSError("imaps needs TLS certificates on the listener")
            tls = self.ctx.tls_context
        for ip in self.ips:
            server = await asyncio.start_server(self._accept, ip, self.port, ssl=tls,
                                                reuse_address=True, limit=1 << 20,
                                                backlog=self.backlog,
                                                ssl_handshake_timeout=30 if tls else None)
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    def open_sessions(self) -> int:
        return len(self._tasks)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        ip = str((writer.get_extra_info("peername") or ("?",))[0])
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Replies are whole lines and literals already: send them at once (no Nagle),
            # or a client that writes a literal in two pieces waits for a delayed ACK.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot: Slot | None = None
        try:
            if self.ctx.connections is not None and not self.ctx.localserve:
                got = self.ctx.connections.acquire(ip)
                if isinstance(got, Refusal):
                    m.CONNECTIONS.labels(service=self.kind, result="refused").inc()
                    log.get_logger("imapserver").debug("connection refused", ip=ip,
                                                       limit=str(got), service=self.kind)
                    writer.write(_REFUSED)
                    with contextlib.suppress(ConnectionError, TimeoutError):
                        await asyncio.wait_for(writer.drain(), 10)
                    writer.close()
                    return
                slot = got
            m.CONNECTIONS.labels(service=self.kind, result="accepted").inc()
            gauge = m.OPEN_CONNECTIONS.labels(service=self.kind)
            gauge.inc()
            try:
                await IMAPConnection(self.ctx, self.kind, reader, writer).run()
            finally:
                gauge.dec()
        finally:
            if slot is not None:
                slot.release()
            self._tasks.discard(task)

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
        return list(self._bound)
