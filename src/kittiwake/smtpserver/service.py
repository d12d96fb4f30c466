"""An SMTP listener: accepts connections on its addresses and runs each in a task."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from kittiwake.smtpserver.connection import SMTPConnection
from kittiwake.smtpserver.context import ServerContext


class SMTPService:
    """smtp (25), submission (587) or submissions (465, implicit TLS) on some IPs."""

    def __init__(self, ctx: ServerContext, kind: str, ips: list[str], port: int) -> None:
        self.ctx = ctx
        self.kind = kind
        self.name = kind
        self.ips = ips
        self.port = port
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound: list[str] = []

    async def start(self) -> None:
        tls: ssl.SSLContext | None = None
        if self.kind == "submissions":
            if self.ctx.tls_context is None:
                raise OSError("submissions needs TLS certificates on the listener")
            tls = self.ctx.tls_context
        for ip in self.ips:
            server = await asyncio.start_server(self._accept, ip, self.port, ssl=tls,
                                                reuse_address=True, limit=1 << 20,
                                                ssl_handshake_timeout=30 if tls else None)
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        ip = str((writer.get_extra_info("peername") or ("?",))[0])
        open_count = self.ctx.open_per_ip.get(ip, 0)
        try:
            if open_count >= self.ctx.limits.max_connections_per_ip and not self.ctx.localserve:
                writer.write(b"421 4.7.0 too many connections from your address\r\n")
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                writer.close()
                return
            self.ctx.open_per_ip[ip] = open_count + 1
            await SMTPConnection(self.ctx, self.kind, reader, writer).run()
        finally:
            left = self.ctx.open_per_ip.get(ip, 1) - 1
            if left <= 0:
                self.ctx.open_per_ip.pop(ip, None)
            else:
                self.ctx.open_per_ip[ip] = left
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
